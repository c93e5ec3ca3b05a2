//! RISC-V (riscv32imc, the ESP32-C3's ISA: no FPU, no atomics) on QEMU's
//! `virt` machine in M-mode: riscv-rt's entry point, semihosting through
//! riscv-semihosting, and a panic handler and an exception handler that end
//! the run with a failure instead of hanging.
//!
//! Without the `a` extension the target has no atomic types at all: the
//! semihosting console is guarded by a critical section (the `riscv` crate's
//! single-hart one, which masks interrupts), not by an atomic.

use core::panic::PanicInfo;

use riscv_semihosting::debug;
pub use riscv_semihosting::{hprint, hprintln};

#[riscv_rt::entry]
fn main() -> ! {
    crate::run()
}

/// The current stack pointer.
#[inline(always)]
pub fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: reads the `sp` register, touches nothing else.
    unsafe { core::arch::asm!("mv {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}

/// Ends the run with exit status 0 (`passed`) or 1.
pub fn exit(passed: bool) -> ! {
    debug::exit(if passed {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Without a debugger attached the exit call returns: wait.
    loop {
        riscv::asm::wfi();
    }
}

/// A panic prints its message and ends the run with exit status 1, as
/// panic-semihosting's `exit` feature does on Cortex-M.
#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    riscv_semihosting::heprintln!("{}", info);
    exit(false)
}

/// An exception (illegal instruction, access fault, misaligned access, ...)
/// ends the run with a failure instead of riscv-rt's default, a silent loop.
#[unsafe(export_name = "ExceptionHandler")]
extern "C" fn exception(frame: &riscv_rt::TrapFrame) -> ! {
    hprintln!(
        "exception: mcause = {:#x}, mepc = {:#010x}, {:?}",
        riscv::register::mcause::read().bits(),
        riscv::register::mepc::read(),
        frame
    );
    exit(false)
}
