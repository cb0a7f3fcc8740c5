"""The simple lmms-eval model class for mmreason checkpoints: ``lmms-eval --model mmreason --force_simple``.

lmms-eval 0.7 sends loglikelihood requests (its ``multiple_choice`` tasks: one per choice) only to simple
models; its chat tasks admit generation output types only. This class takes every request type a simple
task builds: ``loglikelihood`` (`lmms_eval_model.CheckpointLMM.loglikelihood`), ``generate_until`` and
``generate_until_multi_round``, the context being the task's text (``doc_to_text``, few-shot included)
after the media ``doc_to_visual`` gives. Model arguments, prompt style, tools and generation are the chat
class's (`mmreason.eval.lmms_eval_model`).
"""

from __future__ import annotations

from typing import Any

from mmreason.eval.lmms_eval_model import CheckpointLMM, user_turn


class MMReasonSimpleLMM(CheckpointLMM):
    """A checkpoint as an lmms-eval simple model: loglikelihood and generation from text contexts."""

    is_simple = True

    def _doc(self, request: Any) -> dict:
        doc_id, task, split = request.args[-3:]
        return self.task_dict[task][split][doc_id]

    def generate_until(self, requests: list) -> list[str]:
        """One output per request ``(context, gen_kwargs, doc_to_visual, doc_id, task, split)``, in order."""
        asks = []
        for request in requests:
            ctx, gen_kwargs, doc_to_visual, _, task, _ = request.args
            asks.append((user_turn(doc_to_visual(self._doc(request)), ctx), gen_kwargs or {}, task))
        return self.generate(asks)

    def generate_until_multi_round(self, requests: list) -> list[list[str]]:
        """Per request ``(context, gen_kwargs, doc_to_visual, doc_to_text, doc_id, task, split)``, its
        rounds' outputs: round 0 from the context and ``doc_to_visual(doc)``, round k from
        ``doc_to_text(doc, round_idx=k, previous_output=[outputs so far], previous_round_info=...)``, which
        answers ``(visuals, text, terminal, round result, info)``, until terminal."""
        def first(i: int) -> list[dict]:
            ctx, _, doc_to_visual, *_ = requests[i].args
            return user_turn(doc_to_visual(self._doc(requests[i])), ctx)

        def following(i: int, round_idx: int, outputs: list[str], info: Any) -> tuple:
            doc_to_text = requests[i].args[3]
            payload = doc_to_text(self._doc(requests[i]), round_idx=round_idx, previous_output=outputs,
                                  previous_round_info=info)
            if not (isinstance(payload, tuple) and len(payload) == 5):
                return None, True, None, info  # a task without the round protocol: one round
            visuals, text, terminal, result, info = payload
            return (None if terminal else user_turn(visuals, text)), terminal, result, info

        return self.rounds(requests, first, following)
