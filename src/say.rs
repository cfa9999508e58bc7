//! Printing, for every layer: what csmport writes to the terminal goes through here, so text
//! from a server or an input file shows its control characters as escapes (`\x1b`) and cannot
//! drive the terminal, and a reader that went away (`| head`) ends the output quietly. Used
//! by `cmd` (results and errors), `engine::progress` (lines above the bar) and `main`.

use std::io::Write;

use csmport_api::text::visible;

/// Writes `bytes` to standard output as they are (completion scripts, man pages).
pub fn write_out(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => write_err(&format!("csmport: cannot write to standard output: {e}\n")),
        Ok(()) => {}
    }
}

/// Writes `text` to standard output, control characters shown.
pub fn out(text: &str) {
    write_out(visible(text).as_bytes());
}

/// Writes `text` to standard error, control characters shown; a closed standard error is
/// not worth a panic.
pub fn write_err(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err
        .write_all(visible(text).as_bytes())
        .and_then(|()| err.flush());
}

/// `println!` for results, through `out`.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::say::out(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` through `write_err`.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::say::write_err(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// Standard error for the log lines of `-v`: each line as `write_err` writes it.
#[derive(Clone, Copy, Default)]
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        write_err(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
