//! Cortex-M (M0, M4F, M33 on QEMU's `microbit`, `mps2-an386`,
//! `mps2-an505`): cortex-m-rt's entry point, semihosting through
//! cortex-m-semihosting, panics through panic-semihosting, and a HardFault
//! that ends the run instead of hanging.

use cortex_m_rt::{ExceptionFrame, entry, exception};
use cortex_m_semihosting::debug;
pub use cortex_m_semihosting::{hprint, hprintln};
use panic_semihosting as _;

#[entry]
fn main() -> ! {
    crate::run()
}

/// The current stack pointer (thread mode runs on MSP here).
#[inline(always)]
pub fn stack_pointer() -> usize {
    cortex_m::register::msp::read() as usize
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
        cortex_m::asm::wfi();
    }
}

/// A HardFault ends the run with a failure instead of a silent hang.
#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    hprintln!("HardFault: {:?}", frame);
    exit(false)
}
