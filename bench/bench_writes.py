"""Shard write throughput per deflate level, with the stdlib's zip + zlib and np.savez_compressed
for reference, in one run.

    .venv/bin/python bench/bench_writes.py [--quick] [--samples 4096] [--repeat 3] [--generator]

Each level writes one full shard as a shard job does (``ShardWriter``: float16 conversion,
CRC-32, zlib-ng deflate, atomic temp file + fsync + rename of both files, no sha256) into a
temporary directory; the figure is the best of ``--repeat`` runs, in samples per second of wall
time on one thread. Data: synthetic
random-polyphony windows with Gaussian targets shaped like real ones (``--generator`` uses
``notewise.synth.generate.generate_range`` and the timbre library in results/ instead).
"""

from __future__ import annotations

import argparse
import io
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from notewise.store.f16 import float32_to_float16, hardware_conversion
from notewise.store.npzfile import crc32, npy_bytes, npz_bytes
from notewise.loading.reader import read_target_arrays
from notewise.store.shards import DEFAULT_COMPRESSLEVEL, ShardWriter, note_table, to_float16
from timing import best_seconds

POLYPHONY = [1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6, 7, 8, 10, 12, 16]


class Shard(NamedTuple):
    waveforms: np.ndarray
    confs: np.ndarray
    energies: np.ndarray
    notes: dict


def synthetic_shard(n: int, window: int = 4096, n_bins: int = 2048, seed: int = 0) -> Shard:
    """Random-polyphony-shaped data: per note a sigma-1.5 Gaussian in confs and in energies."""
    rng = np.random.default_rng(seed)
    counts = rng.choice(POLYPHONY, n)
    rows = np.repeat(np.arange(n), counts).astype(np.int32)
    m = len(rows)
    centres = rng.uniform(0, n_bins - 1, m)
    weights = np.where(rng.random(m) < 0.5, 1.0, rng.uniform(0, 0.3, m))
    shares = rng.uniform(0.05, 1, m)
    shares /= np.bincount(rows, shares, n)[rows]
    offsets = np.arange(-12, 13)
    cols = np.clip(np.rint(centres)[:, None] + offsets, 0, n_bins - 1).astype(np.int64)
    g = np.exp(-((cols - centres[:, None]) ** 2) / (2 * 1.5**2))
    confs = np.zeros((n, n_bins), np.float32)
    energies = np.zeros((n, n_bins), np.float32)
    np.maximum.at(confs, (rows[:, None], cols), (weights[:, None] * g).astype(np.float32))
    np.add.at(energies, (rows[:, None], cols), (shares[:, None] * g / g.sum(1, keepdims=True)).astype(np.float32))
    waveforms = (rng.standard_normal((n, window)) * 0.1).clip(-0.99, 0.99).astype(np.float32)
    notes = {"note_sample": rows, "note_freq": rng.uniform(20, 5000, m),
             "note_velocity": rng.uniform(0.1, 1, m), "note_timbre": rng.integers(0, 100, m),
             "note_onset": rng.integers(-4095, 4096, m), "note_offset": rng.integers(1, 8192, m),
             "note_class": rng.integers(1, 5, m), "note_weight": weights, "note_energy_share": shares}
    return Shard(waveforms, confs, energies, note_table(notes, n))


def generated_shard(n: int) -> Shard:
    from notewise.workflow.specs import generation_spec
    from notewise.synth.generate import generate_range
    from notewise.synth.timbres import TimbreLibrary
    import yaml

    config = yaml.safe_load(Path("config.yaml").read_text())
    timbres = TimbreLibrary.load("results/timbres/timbres.npz")
    return generate_range(generation_spec(config, "train"), 0, n, timbres)


def isal_row(members: dict, n: int, tpath: Path, repeat: int) -> None:
    """ISA-L level 1 through the same zip writer, where ``isal`` is installed (not a dependency:
    ``pip install isal``): why we do not use it (the stdlib inflates its streams slowly)."""
    try:
        from isal import isal_zlib
    except ImportError:
        print("ISA-L (isal) not installed: no ISA-L row")
        return
    import notewise.store.npzfile as npzfile

    def isal_deflate(payload, level):
        compressor = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -15)
        return b"".join([compressor.compress(part) for part in payload] + [compressor.flush()])

    zlib_ng_deflate, npzfile.deflate = npzfile.deflate, isal_deflate
    try:
        seconds = best_seconds(lambda: npz_bytes(members, 1), repeat)
        tpath.write_bytes(npz_bytes(members, 1))
    finally:
        npzfile.deflate = zlib_ng_deflate
    read = best_seconds(lambda: read_target_arrays(tpath), repeat)
    print(f"ISA-L targets (level 1)            {n / seconds:>10,.0f} {tpath.stat().st_size / 1e6:>11.2f}"
          f"      -   (in memory, same zip writer; read at {n / read:,.0f}/s)")


def write_like_a_job(shard: Shard, wpath: Path, tpath: Path, level: int) -> None:
    rows, window = shard.waveforms.shape
    with ShardWriter(wpath, tpath, rows, window, shard.confs.shape[1], compresslevel=level) as writer:
        writer.append(shard.waveforms, shard.confs, shard.energies, shard.notes)


def stdlib_npz(members: dict, level: int) -> bytes:
    """The same ``.npz`` through ``zipfile`` and the stdlib's zlib (our writer before zlib-ng)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        for name, array in members.items():
            archive.writestr(f"{name}.npy", npy_bytes(array))
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--generator", action="store_true")
    parser.add_argument("--quick", action="store_true", help="512 samples, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.samples, args.repeat = 512, 1
    n = args.samples
    shard = generated_shard(n) if args.generator else synthetic_shard(n)
    raw_mb = (shard.waveforms.nbytes + shard.confs.nbytes // 2 + shard.energies.nbytes // 2) / 1e6
    print(f"{n} samples, {'generator' if args.generator else 'synthetic'} data,"
          f" {raw_mb:.1f} MB uncompressed (waveforms + float16 targets); float16 conversion"
          f" in hardware: {hardware_conversion()}")
    halves = [np.ones(t.shape, np.float16) for t in (shard.confs, shard.energies)]  # touched

    def convert(hardware):
        for values, out in zip((shard.confs, shard.energies), halves):
            float32_to_float16(values, out, hardware=hardware)

    parts = {  # float16 conversions into the same (already touched) arrays
        "float16 conversion": lambda: convert(hardware_conversion()),
        "  software path": lambda: convert(False),
        "  NumPy astype": lambda: [np.copyto(out, values, casting="same_kind") for values, out
                                   in zip((shard.confs, shard.energies), halves)],
        "waveform CRC-32 (zlib-ng)": lambda: crc32(shard.waveforms),
        "waveform CRC-32 (zlib)": lambda: zlib.crc32(shard.waveforms),
    }
    for name, fn in parts.items():
        print(f"  {name:<22} {n / best_seconds(fn, args.repeat):>10,.0f} samples/s")
    print(f"{'what':<34} {'samples/s':>10} {'targets MB':>11} {'shard MB':>9}")
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        wpath, tpath = Path(tmp) / "w.npy", Path(tmp) / "t.npz"
        targets_seconds = {}
        members = {"confs": to_float16(shard.confs), "energies": to_float16(shard.energies),
                   **shard.notes}
        for level in sorted({0, 1, 2, 6, DEFAULT_COMPRESSLEVEL}):
            seconds = best_seconds(lambda: write_like_a_job(shard, wpath, tpath, level), args.repeat)
            targets_only = best_seconds(lambda: npz_bytes(members, level), args.repeat)
            targets_seconds[level] = targets_only
            size, total = tpath.stat().st_size / 1e6, (tpath.stat().st_size + wpath.stat().st_size) / 1e6
            read = best_seconds(lambda: read_target_arrays(tpath), args.repeat)
            label = "stored" if level == 0 else f"deflate {level}"
            print(f"shard write, {label:<21} {n / seconds:>10,.0f} {size:>11.2f} {total:>9.1f}"
                  f"   (targets .npz in memory alone: {n / targets_only:,.0f}/s;"
                  f" a reader inflates them at {n / read:,.0f}/s)")
        stdlib = best_seconds(lambda: stdlib_npz(members, 1), args.repeat)
        tpath.write_bytes(stdlib_npz(members, 1))
        read = best_seconds(lambda: read_target_arrays(tpath), args.repeat)
        print(f"zipfile + zlib targets (level 1)   {n / stdlib:>10,.0f} {tpath.stat().st_size / 1e6:>11.2f}"
              f"      -   (in memory: the writer before zlib-ng; read at {n / read:,.0f}/s)")
        reference = io.BytesIO()

        def savez():
            reference.seek(0)
            reference.truncate()
            np.savez_compressed(reference, confs=to_float16(shard.confs),
                                energies=to_float16(shard.energies), **shard.notes)

        seconds = best_seconds(savez, args.repeat)
        print(f"np.savez_compressed targets (lvl 6) {n / seconds:>10,.0f} {len(reference.getvalue()) / 1e6:>11.2f}"
              "      -   (in memory, no waveforms, no fsync)")
        isal_row(members, n, tpath, args.repeat)
        ours = targets_seconds[DEFAULT_COMPRESSLEVEL]
        print(f"targets .npz, default level {DEFAULT_COMPRESSLEVEL}: {seconds / ours:.1f}x"
              f" np.savez_compressed (the issue measured about 14,000 samples/s for the latter),"
              f" {stdlib / ours:.1f}x zipfile + zlib")


if __name__ == "__main__":
    main()
