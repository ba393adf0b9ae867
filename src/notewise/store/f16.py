"""float32 -> float16 conversion for the stored targets, bit-identical to NumPy's ``astype``.

NumPy converts float32 to float16 element by element in software here (about 3 ns an element,
in the order of the synthesis of the window the targets belong to). Where Numba's target CPU
converts in hardware (x86 F16C, AArch64), LLVM's ``fptrunc`` does it, vectorised (IEEE round to
nearest even: NumPy's bits for every finite half); elsewhere a branch-free Numba copy of NumPy's
own bit manipulation (``npy_floatbits_to_halfbits``). Either way, overflow, infinities and NaN
(which targets never hold) take NumPy's scalar path, so every input gets NumPy's bits, including
subnormal results, overflow to infinity and NaN payloads.
"""

from __future__ import annotations

import platform

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import config
from numba.core.codegen import get_host_cpu_features
from numba.extending import intrinsic


@njit(cache=True)
def _half_bits(f):
    """The float16 bits of the float32 with bits ``f`` (uint32), as NumPy rounds it."""
    h_sgn = np.uint16((f & np.uint32(0x80000000)) >> np.uint32(16))
    f_exp = f & np.uint32(0x7F800000)
    if f_exp >= np.uint32(0x47800000):  # overflow, infinity or NaN
        if f_exp == np.uint32(0x7F800000) and (f & np.uint32(0x007FFFFF)) != 0:
            ret = np.uint16(0x7C00 + ((f & np.uint32(0x007FFFFF)) >> np.uint32(13)))
            if ret == 0x7C00:
                ret += np.uint16(1)
            return np.uint16(h_sgn + ret)
        return np.uint16(h_sgn + np.uint16(0x7C00))
    if f_exp <= np.uint32(0x38000000):  # a subnormal half or signed zero
        if f_exp < np.uint32(0x33000000):
            return h_sgn
        shift = np.uint32(113) - (f_exp >> np.uint32(23))
        f_sig = (np.uint32(0x00800000) + (f & np.uint32(0x007FFFFF))) >> shift
        if (f_sig & np.uint32(0x3FFF)) != np.uint32(0x1000) or (f & np.uint32(0x7FF)) != 0:
            f_sig += np.uint32(0x1000)
        return np.uint16(h_sgn + np.uint16(f_sig >> np.uint32(13)))
    h_exp = np.uint16((f_exp - np.uint32(0x38000000)) >> np.uint32(13))
    f_sig = f & np.uint32(0x007FFFFF)
    if (f_sig & np.uint32(0x3FFF)) != np.uint32(0x1000):
        f_sig += np.uint32(0x1000)
    return np.uint16(h_sgn + np.uint16(np.uint16(f_sig >> np.uint32(13)) + h_exp))


def hardware_conversion() -> bool:
    """Whether the CPU Numba compiles for converts to half in hardware (``NUMBA_CPU_NAME``
    without F16C: no; LLVM's software fallback is not linked into Numba's JIT)."""
    if platform.machine().lower() in ("aarch64", "arm64"):
        return True
    features = config.CPU_FEATURES if config.CPU_FEATURES is not None else get_host_cpu_features()
    return "+f16c" in features.split(",")


@intrinsic
def _fptrunc_half_bits(typingctx, bits):
    """The float16 bits of the float32 with bits ``bits`` (uint32), rounded by the hardware."""
    if bits != types.uint32:
        return None

    def codegen(context, builder, signature, args):
        value = builder.bitcast(args[0], ir.FloatType())
        return builder.bitcast(builder.fptrunc(value, ir.HalfType()), ir.IntType(16))

    return types.uint16(types.uint32), codegen


@njit(cache=True)
def _is_rare(f):
    """Overflow, infinity or NaN: the inputs ``_half_bits`` redoes."""
    return (f & np.uint32(0x7F800000)) >= np.uint32(0x47800000)


@njit(cache=True)
def _convert_finite_hardware(bits, out):
    """``_convert_finite`` by the CPU's conversion instruction."""
    rare = False
    for i in range(bits.shape[0]):
        out[i] = _fptrunc_half_bits(bits[i])
        rare |= _is_rare(bits[i])
    return rare


@njit(cache=True)
def _convert_finite(bits, out):
    """Branch-free (vectorised) conversion of everything whose half is finite: zeros, normal
    and subnormal halves, underflow to zero; both rounding paths of ``_half_bits`` are formed
    and one is selected. Returns whether any element overflows or is inf/NaN (``_half_bits``
    then redoes those)."""
    rare = np.uint32(0)
    for i in range(bits.shape[0]):
        f = bits[i]
        sign = (f >> np.uint32(16)) & np.uint32(0x8000)
        f_exp = f & np.uint32(0x7F800000)
        f_sig = f & np.uint32(0x007FFFFF)
        step = np.uint32(0) if (f_sig & np.uint32(0x3FFF)) == np.uint32(0x1000) else np.uint32(0x1000)
        normal = (((f_exp - np.uint32(0x38000000)) >> np.uint32(13))
                  + ((f_sig + step) >> np.uint32(13)))
        shift = (np.uint32(113) - (f_exp >> np.uint32(23))) & np.uint32(31)
        sub_sig = (np.uint32(0x00800000) + f_sig) >> shift
        tie = (sub_sig & np.uint32(0x3FFF)) == np.uint32(0x1000) and (f & np.uint32(0x7FF)) == 0
        subnormal = (sub_sig + (np.uint32(0) if tie else np.uint32(0x1000))) >> np.uint32(13)
        is_normal = (f_exp - np.uint32(0x38800000)) < np.uint32(0x47800000 - 0x38800000)
        is_subnormal = (f_exp - np.uint32(0x33000000)) <= np.uint32(0x38000000 - 0x33000000)
        half = normal if is_normal else (subnormal if is_subnormal else np.uint32(0))
        out[i] = np.uint16(sign | half)
        rare |= np.uint32(1) if f_exp >= np.uint32(0x47800000) else np.uint32(0)
    return rare != np.uint32(0)


@njit(cache=True)
def _redo_rare(bits, out):
    for i in range(bits.shape[0]):
        if _is_rare(bits[i]):
            out[i] = _half_bits(bits[i])


def _convert(bits, out, hardware):
    convert_finite = _convert_finite_hardware if hardware else _convert_finite
    if convert_finite(bits, out):
        _redo_rare(bits, out)


def float32_to_float16(values: np.ndarray, out: np.ndarray | None = None,
                       hardware: bool | None = None) -> np.ndarray:
    """``values.astype(np.float16)`` for a float32 array, same bits, several times faster.
    ``out``: a C-contiguous float16 array of the same shape to write into; ``hardware``: the
    conversion path (default: ``hardware_conversion()``; False forces the software one, True
    is refused where the target CPU has no conversion instruction)."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    if out is None:
        out = np.empty(values.shape, np.float16)
    elif out.shape != values.shape or out.dtype != np.float16 or not out.flags.c_contiguous:
        raise ValueError(f"out must be C-contiguous float16 {values.shape},"
                         f" got {out.dtype} {out.shape}")
    if hardware is None:
        hardware = _HARDWARE
    elif hardware and not _HARDWARE:  # the instruction would be a call Numba cannot link
        raise ValueError("Numba's target CPU has no float16 conversion instruction")
    _convert(values.reshape(-1).view(np.uint32), out.reshape(-1).view(np.uint16), hardware)
    return out


_HARDWARE = hardware_conversion()
