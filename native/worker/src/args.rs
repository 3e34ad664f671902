//! Command-line options, parsed by hand (`--flag value` or `--flag=value`).

use crate::log::Level;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
usage: tandem-worker [options]

Serves tandem.v1.Accelerator and grpc.health.v1.Health over gRPC (HTTP/2).

  --socket PATH              listen on a Unix socket (default $XDG_RUNTIME_DIR or /tmp,
                             tandem-worker-<uid>.sock); created 0600, removed at exit
  --listen HOST:PORT         listen on TCP instead (port 0 picks a free port)
  --metrics-listen HOST:PORT serve Prometheus metrics at GET /metrics (default: off)
  --kernels PATH             also serve the kernels of this kernel library (a cdylib built
                             with tandem-sdk); repeatable. Checked at start: ABI, the
                             library's status, descriptor hashes, unique names
  --shm-dir DIR              directory shared-memory regions must live in (default /dev/shm)
  --max-concurrency N        kernel calls running at once (default: compute threads)
  --max-queue M              calls waiting for a slot (default 64); beyond: RESOURCE_EXHAUSTED
  --max-message-bytes B      largest message received or inline output (default 67108864)
  --max-states N             states (CreateState) held at once (default 4096)
  --max-state-bytes B        bytes of states held at once (default 8589934592, 8 GiB)
  --max-regions N            shared-memory regions registered at once (default 256)
  --grace SECONDS            time in-flight calls get to finish when draining (default 10)
  --build-id ID              appended to the version as <version>+ID
  --log-level LEVEL          error, warn, info or debug (default info)
  --supervised               run under a supervisor: leave the terminal's process group
                             (Ctrl-C reaches the supervisor, which drains workers itself)
                             and drain when stdin closes (the supervisor died)
  --version                  print the version and exit
  --help                     print this help and exit
";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

#[derive(Clone, Debug)]
pub struct Config {
    pub endpoint: Endpoint,
    pub metrics: Option<SocketAddr>,
    pub shm_dir: PathBuf,
    pub max_concurrency: usize,
    pub max_queue: usize,
    pub max_message_bytes: usize,
    pub grace: Duration,
    pub build_id: Option<String>,
    pub log_level: Level,
    pub supervised: bool,
    /// Kernel libraries served next to the built-in reference kernels.
    pub kernel_libraries: Vec<PathBuf>,
    pub max_states: usize,
    pub max_state_bytes: u64,
    pub max_regions: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Run,
    Version,
    Help,
}

pub const DEFAULT_MAX_QUEUE: usize = 64;
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 << 20;
pub const DEFAULT_MAX_STATES: usize = 4096;
/// 8 GiB: two supervised workers at their limit leave most of a 24 GiB machine.
pub const DEFAULT_MAX_STATE_BYTES: u64 = 8 << 30;

impl Config {
    /// Defaults, with a Unix socket at `socket`.
    pub fn new(endpoint: Endpoint) -> Config {
        Config {
            endpoint,
            metrics: None,
            shm_dir: PathBuf::from("/dev/shm"),
            max_concurrency: tandem_sdk::pool::threads(),
            max_queue: DEFAULT_MAX_QUEUE,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            grace: Duration::from_secs(10),
            build_id: None,
            log_level: Level::Info,
            supervised: false,
            kernel_libraries: Vec::new(),
            max_states: DEFAULT_MAX_STATES,
            max_state_bytes: DEFAULT_MAX_STATE_BYTES,
            max_regions: crate::shm::DEFAULT_MAX_REGIONS,
        }
    }
}

pub fn default_socket() -> PathBuf {
    let dir = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    dir.join(format!("tandem-worker-{uid}.sock"))
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value.parse().map_err(|_| format!("{flag}: '{value}' is not a valid number"))
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<(Command, Config), String> {
    let mut config = Config::new(Endpoint::Unix(default_socket()));
    let mut args = args.into_iter();
    let mut unix_given = false;
    let mut tcp_given = false;
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.to_owned())),
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "--version" => return Ok((Command::Version, config)),
            "--help" | "-h" => return Ok((Command::Help, config)),
            "--supervised" if inline.is_none() => {
                config.supervised = true;
                continue;
            }
            "--socket"
            | "--listen"
            | "--metrics-listen"
            | "--shm-dir"
            | "--max-concurrency"
            | "--max-queue"
            | "--max-message-bytes"
            | "--grace"
            | "--build-id"
            | "--log-level"
            | "--max-states"
            | "--max-state-bytes"
            | "--max-regions"
            | "--kernels" => {}
            _ => return Err(format!("unknown argument '{arg}'")),
        }
        let value = match inline.or_else(|| args.next()) {
            Some(value) => value,
            None => return Err(format!("{flag} needs a value")),
        };
        match flag.as_str() {
            "--socket" => {
                unix_given = true;
                config.endpoint = Endpoint::Unix(PathBuf::from(value));
            }
            "--listen" => {
                tcp_given = true;
                config.endpoint = Endpoint::Tcp(number(&flag, &value)?);
            }
            "--metrics-listen" => config.metrics = Some(number(&flag, &value)?),
            "--shm-dir" => config.shm_dir = PathBuf::from(value),
            "--max-concurrency" => config.max_concurrency = number(&flag, &value)?,
            "--max-queue" => config.max_queue = number(&flag, &value)?,
            "--max-message-bytes" => config.max_message_bytes = number(&flag, &value)?,
            "--grace" => {
                let secs: f64 = number(&flag, &value)?;
                if !(0.0..=86_400.0).contains(&secs) {
                    return Err(format!("{flag}: must be 0 to 86400 seconds"));
                }
                config.grace = Duration::from_secs_f64(secs);
            }
            "--build-id" => config.build_id = Some(value),
            "--kernels" => config.kernel_libraries.push(PathBuf::from(value)),
            "--max-states" => config.max_states = number(&flag, &value)?,
            "--max-state-bytes" => config.max_state_bytes = number(&flag, &value)?,
            "--max-regions" => config.max_regions = number(&flag, &value)?,
            "--log-level" => {
                config.log_level = Level::parse(&value).ok_or_else(|| format!("{flag}: unknown level '{value}'"))?
            }
            _ => unreachable!("flags were matched above"),
        }
    }
    if unix_given && tcp_given {
        return Err("--socket and --listen are exclusive".into());
    }
    if config.max_concurrency == 0 {
        return Err("--max-concurrency must be at least 1".into());
    }
    if config.max_message_bytes < 1024 || config.max_message_bytes > u32::MAX as usize {
        return Err("--max-message-bytes must be 1024 to 4294967295".into());
    }
    Ok((Command::Run, config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_flags_in_both_forms() {
        let (command, config) =
            parse(args(&["--listen", "127.0.0.1:0", "--max-queue=3", "--grace", "1.5", "--build-id=abc"])).unwrap();
        assert_eq!(command, Command::Run);
        assert_eq!(config.endpoint, Endpoint::Tcp("127.0.0.1:0".parse().unwrap()));
        assert_eq!(config.max_queue, 3);
        assert_eq!(config.grace, Duration::from_millis(1500));
        assert_eq!(config.build_id.as_deref(), Some("abc"));
        assert!(!config.supervised);
        assert!(parse(args(&["--supervised"])).unwrap().1.supervised);
    }

    #[test]
    fn refuses_unknown_and_incomplete_flags() {
        assert!(parse(args(&["--bogus"])).is_err());
        assert!(parse(args(&["--max-queue"])).is_err());
        assert!(parse(args(&["--max-queue", "x"])).is_err());
        assert!(parse(args(&["--socket", "/tmp/a", "--listen", "127.0.0.1:1"])).is_err());
        assert_eq!(parse(args(&["--version"])).unwrap().0, Command::Version);
    }
}
