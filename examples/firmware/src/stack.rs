//! Stack measurement by painting: fill the unused stack with a pattern,
//! run the code, and find the lowest word that no longer holds it.
//!
//! What is counted: the bytes below the caller's stack pointer that the call
//! touches (its own frames and everything it calls), so the caller's frame
//! and its buffers (here in statics) are not. A word the call happens to
//! write with the pattern itself is missed, so a deepest word equal to the
//! pattern would make the figure low by 4 bytes or more; the paint function's
//! own frame and `MARGIN` below it are not painted, so a call using less
//! than that is reported as using that much.

use core::ptr::{addr_of, read_volatile, write_volatile};

/// The pattern (cortex-m-rt's `paint-stack` uses the same).
const PAINT: u32 = 0xCCCC_CCCC;
/// Bytes left unpainted below `paint`'s own stack pointer.
const MARGIN: usize = 32;

unsafe extern "C" {
    /// The initial stack pointer (top): from cortex-m-rt's or riscv-rt's
    /// linker script.
    static _stack_start: u32;
    /// The lowest address the stack may reach: from cortex-m-rt's linker
    /// script, or on RISC-V from `memory/qemu-virt.x` (riscv-rt names none).
    static _stack_end: u32;
}

fn top() -> usize {
    addr_of!(_stack_start) as usize
}

fn bottom() -> usize {
    addr_of!(_stack_end) as usize
}

/// The current stack pointer.
#[inline(always)]
pub fn pointer() -> usize {
    crate::arch::stack_pointer()
}

/// Bytes of stack in use above `sp`.
pub fn depth(sp: usize) -> usize {
    top() - sp
}

/// Paints the free stack from its lowest address up to `MARGIN` bytes below
/// this function's own frame; returns the lowest painted address.
#[inline(never)]
pub fn paint() -> usize {
    let end = pointer() - MARGIN;
    let mut p = bottom();
    while p < end {
        // SAFETY: [bottom, end) is stack below every live frame (no
        // interrupts are enabled, nothing else runs): unused memory.
        unsafe { write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
    bottom()
}

/// Bytes below `caller_sp` touched since `paint` (whose result is
/// `painted`). If even the lowest painted word was overwritten the stack may
/// have overflowed: the result is then the whole painted depth, a lower
/// bound.
pub fn used_below(caller_sp: usize, painted: usize) -> usize {
    let mut p = painted;
    // SAFETY: reads of the painted region, inside the stack's RAM.
    while p < caller_sp && unsafe { read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    caller_sp - p
}
