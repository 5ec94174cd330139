"""Decode-once image cache: a uint8 memmap on disk plus an index keyed by sample_id + fingerprint.

`build_cache(samples, size=..., channels=...)` decodes only what is new or changed
(fingerprint = file size + mtime_ns, plus the face box; a hash for pixel-CSV rows),
using a process pool that writes straight into the shared memmap by row. Reruns,
other methods and other folds then cost no decoding. Samples that fail to decode are
quarantined in `ImageCache.problems`, never substituted.

Modules: `build` (the public `build_cache` and `ImageCache`), `samples` (root and
fingerprints of a request), `jobs` (decoding into the memmap) and `storage` (the on-disk
format: index, generations, growth, locking).
"""

from __future__ import annotations

from fercleaner.cache.build import ImageCache, build_cache, default_cache_root
from fercleaner.cache.jobs import ProgressFn

__all__ = ["ImageCache", "ProgressFn", "build_cache", "default_cache_root"]
