"""Each family's chat template renders a fixed conversation to the official layout, written out literally.

Rendered through the processor saved with the tiny model, so the checkpoint carries the template too.
"""

import pytest

IMAGE = {"type": "image", "image": "cat.png"}
VIDEO = {"type": "video", "video": "clip.mp4"}
AUDIO = {"type": "audio", "audio": "bark.wav"}


def text(t):
    return {"type": "text", "text": t}


@pytest.fixture(scope="module")
def render(tiny_model_dir):
    from transformers import AutoProcessor

    processors = {}

    def go(family, conversation, **kw):
        if family not in processors:
            processors[family] = AutoProcessor.from_pretrained(tiny_model_dir(family))
        return processors[family].apply_chat_template(conversation, tokenize=False, **kw)

    return go


GROUNDING_CHAT = [
    {"role": "user", "content": [IMAGE, text("Where is the cat?")]},
    {"role": "assistant", "content": '<think>left side</think><answer>{"bbox_2d": [1, 2, 30, 40]}</answer>'},
    {"role": "user", "content": [VIDEO, text("And here?")]},
]


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl"])
def test_qwen2_vl_layout(render, family):
    assert render(family, GROUNDING_CHAT, add_generation_prompt=True) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Where is the cat?<|im_end|>\n"
        '<|im_start|>assistant\n<think>left side</think><answer>{"bbox_2d": [1, 2, 30, 40]}</answer><|im_end|>\n'
        "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>And here?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_qwen2_vl_system_and_vision_ids(render):
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [IMAGE, IMAGE, VIDEO, text("Compare.")]}]
    assert render("qwen2_5_vl", chat, add_vision_id=True) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nPicture 1: <|vision_start|><|image_pad|><|vision_end|>"
        "Picture 2: <|vision_start|><|image_pad|><|vision_end|>"
        "Video 1: <|vision_start|><|video_pad|><|vision_end|>Compare.<|im_end|>\n"
    )


def test_qwen2_5_omni_layout(render):
    chat = [{"role": "user", "content": [AUDIO, IMAGE, VIDEO, text("What do you hear and see?")]},
            {"role": "assistant", "content": [text("A dog barking.")]}]
    assert render("qwen2_5_omni", chat, add_generation_prompt=False, add_audio_id=True) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nAudio 1: <|audio_bos|><|AUDIO|><|audio_eos|>"
        "<|vision_bos|><|IMAGE|><|vision_eos|><|vision_bos|><|VIDEO|><|vision_eos|>What do you hear and see?<|im_end|>\n"
        "<|im_start|>assistant\nA dog barking.<|im_end|>\n"
    )


def test_qwen2_5_omni_speech_system_is_passed_not_default(render):
    from mmreason.models.families import OMNI_SPEECH_SYSTEM

    chat = [{"role": "system", "content": OMNI_SPEECH_SYSTEM}, {"role": "user", "content": "hi"}]
    assert render("qwen2_5_omni", chat) == (
        f"<|im_start|>system\n{OMNI_SPEECH_SYSTEM}<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
    )


ZOOM_TOOL = {"type": "function", "function": {
    "name": "image_zoom_in_tool", "description": "Zoom in on a region.",
    "parameters": {"type": "object", "properties": {"bbox_2d": {"type": "array"}}, "required": ["bbox_2d"]}}}


def test_qwen3_vl_tool_call_layout(render):
    chat = [
        {"role": "system", "content": "Think with images."},
        {"role": "user", "content": [IMAGE, text("What is written on the sign?")]},
        {"role": "assistant", "content": "<think>Too small, zoom.</think>", "tool_calls": [
            {"type": "function", "function": {"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [10, 20, 110, 90]}}}]},
        {"role": "tool", "content": [IMAGE, text("zoomed")]},
        {"role": "tool", "content": "second result"},
        {"role": "assistant", "content": "<answer>STOP</answer>"},
    ]
    assert render("qwen3_vl", chat, tools=[ZOOM_TOOL]) == (
        "<|im_start|>system\nThink with images.\n\n# Tools\n\n"
        "You may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
        '{"type": "function", "function": {"name": "image_zoom_in_tool", "description": "Zoom in on a region.", '
        '"parameters": {"type": "object", "properties": {"bbox_2d": {"type": "array"}}, "required": ["bbox_2d"]}}}\n'
        "</tools>\n\nFor each function call, return a json object with function name and arguments within "
        "<tool_call></tool_call> XML tags:\n<tool_call>\n"
        '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What is written on the sign?<|im_end|>\n"
        "<|im_start|>assistant\n<think>Too small, zoom.</think>\n<tool_call>\n"
        '{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [10, 20, 110, 90]}}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\n<tool_response>\n<|vision_start|><|image_pad|><|vision_end|>zoomed\n</tool_response>\n"
        "<tool_response>\nsecond result\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n<answer>STOP</answer><|im_end|>\n"
    )


def test_qwen3_vl_no_default_system_and_string_arguments(render):
    chat = [{"role": "user", "content": "hi"},
            {"role": "assistant", "content": "", "tool_calls": [{"name": "a", "arguments": '{"x": 1}'},
                                                                 {"function": {"name": "b", "arguments": {}}}]}]
    assert render("qwen3_vl", chat, add_generation_prompt=True) == (
        "<|im_start|>user\nhi<|im_end|>\n"
        '<|im_start|>assistant\n<tool_call>\n{"name": "a", "arguments": {"x": 1}}\n</tool_call>\n'
        '<tool_call>\n{"name": "b", "arguments": {}}\n</tool_call><|im_end|>\n'
        "<|im_start|>assistant\n"
    )


def test_qwen3_vl_reasoning_content_only_after_last_user_turn(render):
    chat = [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1", "reasoning_content": "old"},
            {"role": "user", "content": "q2"}, {"role": "assistant", "content": "\na2", "reasoning_content": "\nnew\n"}]
    assert render("qwen3_vl", chat) == (
        "<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\na1<|im_end|>\n"
        "<|im_start|>user\nq2<|im_end|>\n<|im_start|>assistant\n<think>\nnew\n</think>\n\na2<|im_end|>\n"
    )


def test_template_placeholders_are_the_family_tokens():
    from mmreason.models.families import FAMILIES, chat_template

    for name, fam in FAMILIES.items():
        source = chat_template(name)
        for token in (fam.image_token, fam.video_token, fam.vision_start, fam.vision_end) + (
                (fam.audio_token, fam.audio_start, fam.audio_end) if fam.audio_token else ()):
            assert token in source, (name, token)
        assert ("You are a helpful assistant." in source) == (fam.default_system is not None), name
