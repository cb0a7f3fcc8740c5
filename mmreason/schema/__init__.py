"""The canonical sample: its row format and validation, its on-disk form, and readers of users' formats.

Modules, each depending only on the ones before it:

- `sample`: the row format, `validate`, and the helpers that build and read rows;
- `io`: the on-disk form (Parquet via `datasets`, or JSONL), its writers and loaders, the TRL export;
- `columns`: reading source columns (lists, numpy arrays, single items) for the two readers below;
- `swift`: ms-swift's ``objects`` column (grounding boxes and points);
- `readers`: conversions from TRL, LLaVA, ms-swift, EasyR1 and verl rows (`READERS`, `read_rows`).

This package re-exports the names of `sample` and `io`, which import no heavy library (`io` imports
`datasets` inside the functions that use it). The readers import PIL: take them from
`mmreason.schema.readers`.
"""

from mmreason.schema.io import (
    DEFAULT_SHARD,
    dataset_root,
    decode_batch,
    decode_row,
    encode_row,
    features,
    load_rows,
    to_trl,
    to_trl_dataset,
    write_jsonl,
    write_parquet,
)
from mmreason.schema.sample import (
    CONTENT_TYPES,
    ELEMENT_KEYS,
    EXTENSION_TYPES,
    FIELDS,
    GT_FIELDS,
    GUI_KEYS,
    GUI_PLATFORMS,
    IMAGE_TYPES,
    MEDIA_TYPES,
    OPTION_TYPES,
    PART_KEYS,
    PART_OPTIONS,
    ROLES,
    assistant_message,
    images_of,
    media_parts,
    new_row,
    relativize_media,
    resolve_media,
    text_of,
    user_message,
    validate,
)

__all__ = [
    "CONTENT_TYPES", "DEFAULT_SHARD", "ELEMENT_KEYS", "EXTENSION_TYPES", "FIELDS", "GT_FIELDS", "GUI_KEYS",
    "GUI_PLATFORMS", "IMAGE_TYPES", "MEDIA_TYPES", "OPTION_TYPES", "PART_KEYS", "PART_OPTIONS", "ROLES",
    "assistant_message", "dataset_root", "decode_batch", "decode_row", "encode_row", "features",
    "images_of", "load_rows", "media_parts", "new_row", "relativize_media", "resolve_media", "text_of",
    "to_trl", "to_trl_dataset", "user_message", "validate", "write_jsonl", "write_parquet",
]
