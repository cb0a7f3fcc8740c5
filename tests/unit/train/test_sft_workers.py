"""SFT collates in DataLoader workers (`sft.dataloader_workers`) with prefetch: the batches are the ones the
training process collates itself, in the same order for the same seed, and a resumed run (which skips the
batches it already trained on, as the Trainer does) gets the very batches the uninterrupted run got next."""

import torch
from accelerate import skip_first_batches

from mmreason.config import load_recipe
from mmreason.recipes import find_recipe, for_training
from mmreason.train.sft import make_trainer


def train_batches(model, out, workers: int, *, skip: int = 0) -> list[dict]:
    recipe = load_recipe(find_recipe("debug/tiny_sft"),
                         [f"model.path={model}", f"output_dir={out}", "sft.batch_size=2",
                          f"sft.dataloader_workers={workers}", "sft.prefetch_batches=2"])
    trainer = make_trainer(for_training(recipe, "sft"))[0]
    loader = trainer.get_train_dataloader()
    if workers:  # the loader really collates in worker processes, ahead of the step
        assert loader.base_dataloader.num_workers == workers
        assert loader.base_dataloader.prefetch_factor == 2
    if skip:
        loader = skip_first_batches(loader, skip)
    return [dict(batch) for batch in loader]


def same(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
                                    for x, y in zip(a, b))


def test_workers_collate_the_same_batches_and_resume_skips_to_them(tiny_model_dir, tmp_path):
    model = tiny_model_dir("qwen2_5_vl")
    in_process = train_batches(model, tmp_path, 0)
    assert len(in_process) == 4 and "pixel_values" in in_process[0]  # 8 scenes, 2 a batch, with images
    in_workers = train_batches(model, tmp_path, 2)
    assert same(in_process, in_workers)
    assert not same(in_process[:1], in_process[1:2])  # batches differ: the comparison can fail
    resumed = train_batches(model, tmp_path, 2, skip=2)
    assert same(resumed, in_process[2:])
