//! Shared-token authentication: when a token is configured (always on TCP,
//! optionally on a Unix socket), every RPC but the standard health service
//! must carry the gRPC metadata `authorization: Bearer <token>`, and every
//! fast-path connection must present it in its `HELLO` (src/fast).
//!
//! The token comes from a file readable by its owner only (`--token-file`)
//! or from `$TANDEM_WORKER_TOKEN`, never from argv (visible to every user in
//! /proc). Only its BLAKE3 hash is kept, so the secret itself is never in a
//! `Debug` print or a log line, and a presented token is compared by hash
//! (`blake3::Hash`'s equality is constant time), so the comparison reveals
//! neither the token's bytes nor its length.

use std::ffi::OsString;
use std::path::Path;

/// The environment variable the token is read from when no file is given.
pub const TOKEN_ENV: &str = "TANDEM_WORKER_TOKEN";
/// Shortest token accepted: anything shorter is guessable.
pub const MIN_TOKEN_CHARS: usize = 16;
/// Longest token accepted (it travels in every request's headers).
pub const MAX_TOKEN_CHARS: usize = 1024;

/// How to supply the token, for refusals sent to clients.
pub const HOW_TO_AUTHENTICATE: &str = "send gRPC metadata 'authorization: Bearer <token>' with the worker's token \
     (its --token-file or $TANDEM_WORKER_TOKEN; in Tandem.Remote set RemoteOptions.WorkerToken or WorkerTokenFile)";

#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    hash: blake3::Hash,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The outcome of checking a request's `authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Missing,
    Wrong,
}

impl Token {
    /// A token from its text, surrounding whitespace (a file's final
    /// newline) removed. It must be 16 to 1024 visible ASCII characters, so
    /// that it fits an HTTP header unchanged.
    pub fn new(secret: &str, source: &str) -> Result<Token, String> {
        let secret = secret.trim();
        let chars = secret.len();
        if !(MIN_TOKEN_CHARS..=MAX_TOKEN_CHARS).contains(&chars) {
            return Err(format!(
                "the token from {source} must be {MIN_TOKEN_CHARS} to {MAX_TOKEN_CHARS} characters long, got {chars}"
            ));
        }
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "the token from {source} must be visible ASCII characters only (no spaces or control characters)"
            ));
        }
        Ok(Token { hash: blake3::hash(secret.as_bytes()) })
    }

    /// Reads the token from `path`, refusing a file that anyone but its
    /// owner may read or write.
    pub fn from_file(path: &Path) -> Result<Token, String> {
        use std::os::unix::fs::PermissionsExt;
        let shown = path.display();
        let meta = std::fs::metadata(path).map_err(|e| format!("--token-file {shown}: cannot read it: {e}"))?;
        if !meta.is_file() {
            return Err(format!("--token-file {shown}: not a regular file"));
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "--token-file {shown}: group or others may access it (mode {mode:04o}); make it readable by its \
                 owner only: chmod 600 {shown}"
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("--token-file {shown}: cannot read it: {e}"))?;
        Token::new(&text, "--token-file")
    }

    /// The token from `--token-file` when given, else from the environment
    /// variable's value (`env`), else none.
    pub fn resolve(file: Option<&Path>, env: Option<OsString>) -> Result<Option<Token>, String> {
        if let Some(path) = file {
            return Token::from_file(path).map(Some);
        }
        match env {
            None => Ok(None),
            Some(value) => {
                let text = value.into_string().map_err(|_| format!("${TOKEN_ENV} is not valid UTF-8"))?;
                Token::new(&text, &format!("${TOKEN_ENV}")).map(Some)
            }
        }
    }

    /// Checks an `authorization` header value (`Bearer <token>`, the scheme
    /// case-insensitive).
    pub fn check(&self, header: Option<&[u8]>) -> Verdict {
        let Some(value) = header else { return Verdict::Missing };
        let presented = match value.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case(b"bearer ") => value[7..].trim_ascii(),
            _ => return Verdict::Wrong,
        };
        self.check_secret_present(presented)
    }

    /// Checks a token presented as it is (the fast path's `HELLO`); empty
    /// means none was presented.
    pub fn check_secret(&self, presented: &[u8]) -> Verdict {
        if presented.is_empty() {
            return Verdict::Missing;
        }
        self.check_secret_present(presented.trim_ascii())
    }

    fn check_secret_present(&self, presented: &[u8]) -> Verdict {
        if blake3::hash(presented) == self.hash {
            Verdict::Allowed
        } else {
            Verdict::Wrong
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const SECRET: &str = "s3cret-token-0123456789";

    #[test]
    fn checks_the_bearer_header() {
        let token = Token::new(&format!("{SECRET}\n"), "test").unwrap();
        assert_eq!(token.check(Some(format!("Bearer {SECRET}").as_bytes())), Verdict::Allowed);
        assert_eq!(token.check(Some(format!("bearer {SECRET}").as_bytes())), Verdict::Allowed);
        assert_eq!(token.check(None), Verdict::Missing);
        assert_eq!(token.check(Some(SECRET.as_bytes())), Verdict::Wrong);
        assert_eq!(token.check(Some(b"Bearer s3cret-token-012345678")), Verdict::Wrong);
        assert_eq!(token.check(Some(b"Basic abc")), Verdict::Wrong);
        assert_eq!(token.check(Some(b"Bear")), Verdict::Wrong);
        assert!(!format!("{token:?}").contains(SECRET));
        assert_eq!(token.check_secret(SECRET.as_bytes()), Verdict::Allowed);
        assert_eq!(token.check_secret(b""), Verdict::Missing);
        assert_eq!(token.check_secret(b"s3cret-token-012345678"), Verdict::Wrong);
    }

    #[test]
    fn refuses_short_or_unprintable_tokens_without_echoing_them() {
        let err = Token::new("short", "test").unwrap_err();
        assert!(err.contains("16 to 1024") && !err.contains("short"), "{err}");
        let err = Token::new("has a space in the middle", "test").unwrap_err();
        assert!(err.contains("visible ASCII") && !err.contains("space in"), "{err}");
    }

    #[test]
    fn a_token_file_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, SECRET).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Token::from_file(&path).unwrap_err();
        assert!(err.contains("chmod 600") && err.contains("0644") && !err.contains(SECRET), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let token = Token::from_file(&path).unwrap();
        assert_eq!(token.check(Some(format!("Bearer {SECRET}").as_bytes())), Verdict::Allowed);
    }

    #[test]
    fn the_file_wins_over_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, SECRET).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let from_env = OsString::from("another-token-abcdefghij");
        let token = Token::resolve(Some(&path), Some(from_env.clone())).unwrap().unwrap();
        assert_eq!(token.check(Some(format!("Bearer {SECRET}").as_bytes())), Verdict::Allowed);
        let token = Token::resolve(None, Some(from_env)).unwrap().unwrap();
        assert_eq!(token.check(Some(b"Bearer another-token-abcdefghij")), Verdict::Allowed);
        assert_eq!(Token::resolve(None, None).unwrap(), None);
    }
}
