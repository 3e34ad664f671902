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
  --repository DIR           the state repository: CreateState may then name a stored state
                             (loaded memory-mapped after its checksum is verified) instead of
                             carrying its tensors (default: none)
  --max-concurrency N        kernel calls running at once (default: compute threads)
  --max-queue M              calls waiting for a slot (default 64); beyond: RESOURCE_EXHAUSTED
  --max-message-bytes B      largest message received or inline output (default 67108864)
  --max-states N             states (CreateState) held at once (default 4096)
  --max-state-bytes B        bytes of states held at once (default 8589934592, 8 GiB)
  --max-regions N            shared-memory regions registered at once (default 256)
  --max-connections N        client connections open at once (default 1024); beyond, a new
                             connection gets GOAWAY (ENHANCE_YOUR_CALM) and is closed
  --max-streams-per-connection N
                             concurrent requests on one connection (HTTP/2
                             SETTINGS_MAX_CONCURRENT_STREAMS, default 256)
  --max-open-streams N       InvokeStream calls open at once (default 64); beyond: RESOURCE_EXHAUSTED
  --stream-idle-timeout SECONDS
                             longest wait for a call's next request message, e.g. a stream's
                             next chunk (default 30); then DEADLINE_EXCEEDED and its state is freed
  --fast-path on|off         also listen on PATH.fast (next to --socket, same permissions
                             and token) for the local fast path: the unary RPCs as
                             length-prefixed frames, offered in Describe (default on;
                             never on --listen)
  --inline-work-threshold N  a call whose client-estimated work (InvokeRequest.work,
                             multiply-adds) is below N runs on the I/O thread that read it
                             instead of the compute pool (default 1000000; 0: never)
  --token-file PATH          shared token every RPC must carry as 'authorization: Bearer <token>'
                             (the file must be readable by its owner only: chmod 600); else
                             $TANDEM_WORKER_TOKEN. Required with --listen; optional on a socket
  --insecure-no-auth         allow --listen on a loopback address without a token (tests only)
  --tls-cert PATH            serve TLS on --listen: the worker's certificate chain (PEM, leaf
                             first); needs --tls-key. Reloaded when the files change (checked
                             at each new connection and every 5 s); a bad new set keeps the
                             current one. The token is still required
  --tls-key PATH             the certificate's private key (PEM: PKCS#8, RSA or EC)
  --tls-client-ca PATH       also require a client certificate issued by a CA in this PEM file
  --health-listen HOST:PORT  serve only grpc.health.v1.Health, in plaintext and without a
                             token, on a second port (for Kubernetes gRPC probes, which
                             speak neither TLS nor tokens; default: off)
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
    pub max_connections: usize,
    pub max_streams_per_connection: u32,
    pub max_open_streams: usize,
    pub stream_idle_timeout: Duration,
    /// Whether a Unix-socket worker also serves the fast path on `PATH.fast`.
    pub fast_path: bool,
    /// Calls estimated below this many multiply-adds run inline (0: none do).
    pub inline_work_threshold: u64,
    /// Where the token is read from (see [`crate::auth::Token::resolve`]).
    pub token_file: Option<PathBuf>,
    /// The state repository stored states are loaded from; `None`: none.
    pub repository: Option<PathBuf>,
    /// The shared token every RPC but health must carry; `None`: none required.
    pub token: Option<crate::auth::Token>,
    pub insecure_no_auth: bool,
    /// TLS on the TCP listener; `None`: h2c.
    pub tls: Option<crate::tls::TlsFiles>,
    /// A plaintext listener serving only the health service.
    pub health_listen: Option<SocketAddr>,
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
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub const DEFAULT_MAX_STREAMS_PER_CONNECTION: u32 = 256;
pub const DEFAULT_MAX_OPEN_STREAMS: usize = 64;
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// About 25 µs of compute: short enough not to hold up the other calls an
/// I/O thread serves, long enough for tiny calls to skip the pool hand-off.
pub const DEFAULT_INLINE_WORK_THRESHOLD: u64 = 1_000_000;

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
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_streams_per_connection: DEFAULT_MAX_STREAMS_PER_CONNECTION,
            max_open_streams: DEFAULT_MAX_OPEN_STREAMS,
            stream_idle_timeout: DEFAULT_STREAM_IDLE_TIMEOUT,
            fast_path: true,
            inline_work_threshold: DEFAULT_INLINE_WORK_THRESHOLD,
            token_file: None,
            repository: None,
            token: None,
            insecure_no_auth: false,
            tls: None,
            health_listen: None,
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

fn non_empty_path(flag: &str, value: String) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Err(format!("{flag} needs a path"));
    }
    Ok(PathBuf::from(value))
}

fn at_least_one<T: std::str::FromStr + PartialOrd + From<u8>>(flag: &str, value: &str) -> Result<T, String> {
    let n: T = number(flag, value)?;
    if n < T::from(1) {
        return Err(format!("{flag} must be at least 1"));
    }
    Ok(n)
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<(Command, Config), String> {
    let mut config = Config::new(Endpoint::Unix(default_socket()));
    let mut args = args.into_iter();
    let mut unix_given = false;
    let (mut tls_cert, mut tls_key, mut tls_client_ca) = (None, None, None);
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
            "--insecure-no-auth" if inline.is_none() => {
                config.insecure_no_auth = true;
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
            | "--max-connections"
            | "--max-streams-per-connection"
            | "--max-open-streams"
            | "--stream-idle-timeout"
            | "--token-file"
            | "--repository"
            | "--tls-cert"
            | "--tls-key"
            | "--tls-client-ca"
            | "--health-listen"
            | "--fast-path"
            | "--inline-work-threshold"
            | "--kernels" => {}
            // A secret on the command line is visible to every user in /proc.
            "--token" => {
                return Err(format!(
                    "{flag} is not accepted: pass the token in a file (--token-file, chmod 600) or in ${}",
                    crate::auth::TOKEN_ENV
                ))
            }
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
            "--max-connections" => config.max_connections = at_least_one(&flag, &value)?,
            "--max-streams-per-connection" => config.max_streams_per_connection = at_least_one(&flag, &value)?,
            "--max-open-streams" => config.max_open_streams = at_least_one(&flag, &value)?,
            "--stream-idle-timeout" => {
                let secs: f64 = number(&flag, &value)?;
                if !(secs > 0.0 && secs <= 86_400.0) {
                    return Err(format!("{flag}: must be more than 0 and at most 86400 seconds"));
                }
                config.stream_idle_timeout = Duration::from_secs_f64(secs);
            }
            "--token-file" => config.token_file = Some(PathBuf::from(value)),
            "--repository" => {
                if value.is_empty() {
                    return Err(format!("{flag} needs a directory"));
                }
                config.repository = Some(PathBuf::from(value));
            }
            "--tls-cert" => tls_cert = Some(non_empty_path(&flag, value)?),
            "--tls-key" => tls_key = Some(non_empty_path(&flag, value)?),
            "--tls-client-ca" => tls_client_ca = Some(non_empty_path(&flag, value)?),
            "--health-listen" => config.health_listen = Some(number(&flag, &value)?),
            "--fast-path" => {
                config.fast_path = match value.as_str() {
                    "on" => true,
                    "off" => false,
                    _ => return Err(format!("{flag}: '{value}' is neither on nor off")),
                }
            }
            "--inline-work-threshold" => config.inline_work_threshold = number(&flag, &value)?,
            "--log-level" => {
                config.log_level = Level::parse(&value).ok_or_else(|| format!("{flag}: unknown level '{value}'"))?
            }
            _ => unreachable!("flags were matched above"),
        }
    }
    if unix_given && tcp_given {
        return Err("--socket and --listen are exclusive".into());
    }
    config.tls = match (tls_cert, tls_key, tls_client_ca) {
        (None, None, None) => None,
        (Some(cert), Some(key), client_ca) => Some(crate::tls::TlsFiles { cert, key, client_ca }),
        (None, Some(_), _) | (None, None, Some(_)) => {
            return Err("--tls-key and --tls-client-ca need --tls-cert (the worker's certificate)".into())
        }
        (Some(_), None, _) => return Err("--tls-cert needs --tls-key (the certificate's private key)".into()),
    };
    if config.tls.is_some() && !tcp_given {
        return Err("--tls-cert serves TLS on TCP: give --listen HOST:PORT (a Unix socket needs no TLS)".into());
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

    #[test]
    fn parses_connection_stream_and_auth_limits() {
        let (_, config) = parse(args(&[
            "--max-connections=8",
            "--max-streams-per-connection",
            "4",
            "--max-open-streams=2",
            "--stream-idle-timeout",
            "0.25",
            "--token-file=/run/t",
            "--insecure-no-auth",
        ]))
        .unwrap();
        assert_eq!(config.max_connections, 8);
        assert_eq!(config.max_streams_per_connection, 4);
        assert_eq!(config.max_open_streams, 2);
        assert_eq!(config.stream_idle_timeout, Duration::from_millis(250));
        assert_eq!(config.token_file.as_deref(), Some(std::path::Path::new("/run/t")));
        assert!(config.insecure_no_auth);
        let defaults = parse(args(&[])).unwrap().1;
        assert_eq!(defaults.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(defaults.max_streams_per_connection, DEFAULT_MAX_STREAMS_PER_CONNECTION);
        assert_eq!(defaults.stream_idle_timeout, DEFAULT_STREAM_IDLE_TIMEOUT);
        assert!(!defaults.insecure_no_auth && defaults.token.is_none());
    }

    #[test]
    fn parses_the_repository() {
        let (_, defaults) = parse(args(&[])).unwrap();
        assert_eq!(defaults.repository, None);
        let (_, config) = parse(args(&["--repository", "/srv/states"])).unwrap();
        assert_eq!(config.repository, Some(PathBuf::from("/srv/states")));
        assert!(parse(args(&["--repository="])).unwrap_err().contains("needs a directory"));
    }

    #[test]
    fn parses_tls_and_the_health_port() {
        let (_, config) = parse(args(&[
            "--listen=10.0.0.2:50051",
            "--tls-cert",
            "/tls/tls.crt",
            "--tls-key=/tls/tls.key",
            "--tls-client-ca",
            "/tls/ca.crt",
            "--health-listen=0.0.0.0:8081",
        ]))
        .unwrap();
        let tls = config.tls.expect("tls");
        assert_eq!(tls.cert, PathBuf::from("/tls/tls.crt"));
        assert_eq!(tls.key, PathBuf::from("/tls/tls.key"));
        assert_eq!(tls.client_ca, Some(PathBuf::from("/tls/ca.crt")));
        assert_eq!(config.health_listen, Some("0.0.0.0:8081".parse().unwrap()));
        assert!(parse(args(&[])).unwrap().1.tls.is_none());

        let err = parse(args(&["--listen=127.0.0.1:0", "--tls-cert=/c"])).unwrap_err();
        assert!(err.contains("--tls-key"), "{err}");
        let err = parse(args(&["--listen=127.0.0.1:0", "--tls-key=/k"])).unwrap_err();
        assert!(err.contains("need --tls-cert"), "{err}");
        let err = parse(args(&["--listen=127.0.0.1:0", "--tls-client-ca=/ca"])).unwrap_err();
        assert!(err.contains("need --tls-cert"), "{err}");
        let err = parse(args(&["--tls-cert=/c", "--tls-key=/k"])).unwrap_err();
        assert!(err.contains("--listen"), "{err}");
        assert!(parse(args(&["--tls-cert="])).unwrap_err().contains("needs a path"));
        assert!(parse(args(&["--health-listen", "nowhere"])).unwrap_err().contains("--health-listen"));
    }

    #[test]
    fn parses_the_fast_path_and_the_inline_threshold() {
        let defaults = parse(args(&[])).unwrap().1;
        assert!(defaults.fast_path);
        assert_eq!(defaults.inline_work_threshold, DEFAULT_INLINE_WORK_THRESHOLD);
        let (_, config) = parse(args(&["--fast-path", "off", "--inline-work-threshold=0"])).unwrap();
        assert!(!config.fast_path);
        assert_eq!(config.inline_work_threshold, 0);
        let err = parse(args(&["--fast-path=yes"])).unwrap_err();
        assert!(err.contains("--fast-path") && err.contains("'yes'"), "{err}");
        assert!(parse(args(&["--inline-work-threshold", "-1"])).unwrap_err().contains("--inline-work-threshold"));
    }

    #[test]
    fn refuses_zero_limits_and_a_token_in_argv() {
        for flag in ["--max-connections", "--max-streams-per-connection", "--max-open-streams"] {
            let err = parse(args(&[flag, "0"])).unwrap_err();
            assert!(err.contains(flag) && err.contains("at least 1"), "{err}");
        }
        assert!(parse(args(&["--stream-idle-timeout", "0"])).unwrap_err().contains("--stream-idle-timeout"));
        let err = parse(args(&["--token", "secret-in-argv"])).unwrap_err();
        assert!(err.contains("--token-file") && !err.contains("secret-in-argv"), "{err}");
        let err = parse(args(&["--token=secret-in-argv"])).unwrap_err();
        assert!(!err.contains("secret-in-argv"), "{err}");
    }
}
