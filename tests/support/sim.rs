//! The simulator as a separate process (`aibench sim --port 0`), killed
//! when dropped.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

pub struct Sim {
    pub child: Child,
    pub url: String,
}

impl Sim {
    pub fn start(args: &[&str]) -> Sim {
        Sim::start_with(Command::new(env!("CARGO_BIN_EXE_aibench")), args)
    }

    /// Starts it through `c` (e.g. `taskset -c 1 aibench`).
    pub fn start_with(mut c: Command, args: &[&str]) -> Sim {
        let mut child =
            c.args(["sim", "--port", "0"]).args(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        Sim { child, url: line.trim().to_string() }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.kill9();
    }
}
