//! A secret from the config: a literal value, or an absolute file path whose content is read
//! each time the secret is used, so that a rotated secret (a remounted Kubernetes Secret) takes
//! effect without a restart. It never prints its value.

use std::fmt;
use std::io::Read;
use std::path::Path;

/// What `config show`, the API and logs print in place of a secret (as Kiali does).
pub const OBFUSCATED: &str = "xxx";

/// The largest credential file read, in bytes: a Kubernetes Secret holds at most 1 MiB. A path
/// such as `/dev/zero` would otherwise be read until memory runs out.
pub const MAX_CREDENTIAL_FILE_BYTES: u64 = 1 << 20;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credential(String);

#[derive(Debug, thiserror::Error)]
#[error("cannot read the credential file `{path}`: {source}")]
pub struct CredentialError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

impl Credential {
    pub fn new(value: impl Into<String>) -> Self {
        Credential(value.into())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The file the secret is read from, when the value is an absolute path (Kiali's rule:
    /// the value starts with `/`).
    pub fn file(&self) -> Option<&Path> {
        self.0.starts_with('/').then(|| Path::new(&self.0))
    }

    /// The secret itself: the literal, or the file's content with surrounding white space
    /// trimmed (a trailing newline in a mounted secret is never part of a password).
    pub fn resolve(&self) -> Result<String, CredentialError> {
        match self.file() {
            None => Ok(self.0.clone()),
            Some(path) => read_bounded(path)
                .map(|content| content.trim().to_string())
                .map_err(|source| CredentialError {
                    path: self.0.clone(),
                    source,
                }),
        }
    }

    /// The value as shown to people: empty stays empty, anything else is `xxx`.
    pub fn obfuscated(&self) -> &'static str {
        if self.0.is_empty() { "" } else { OBFUSCATED }
    }

    /// True when the value is the obfuscation marker sent back by a client (the configuration
    /// tester posts the config it was shown), meaning "keep the live value".
    pub fn is_obfuscated(&self) -> bool {
        self.0 == OBFUSCATED
    }
}

/// Reads a credential file as text, refusing one larger than [`MAX_CREDENTIAL_FILE_BYTES`].
fn read_bounded(path: &Path) -> std::io::Result<String> {
    let mut content = String::new();
    std::fs::File::open(path)?
        .take(MAX_CREDENTIAL_FILE_BYTES.saturating_add(1))
        .read_to_string(&mut content)?;
    if u64::try_from(content.len()).unwrap_or(u64::MAX) > MAX_CREDENTIAL_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the file is larger than {MAX_CREDENTIAL_FILE_BYTES} bytes"),
        ));
    }
    Ok(content)
}

/// A credential serializes as people may see it: `xxx`, or empty when unset.
impl serde::Serialize for Credential {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.obfuscated())
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credential({:?})", self.obfuscated())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn literal_and_file_values_resolve() {
        assert_eq!(Credential::new("s3cret").resolve().unwrap(), "s3cret");
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "  from-file  ").unwrap();
        let credential = Credential::new(file.path().to_str().unwrap());
        assert_eq!(credential.resolve().unwrap(), "from-file");
    }

    #[test]
    fn a_rotated_file_is_read_again() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let credential = Credential::new(file.path().to_str().unwrap());
        std::fs::write(file.path(), "first").unwrap();
        assert_eq!(credential.resolve().unwrap(), "first");
        std::fs::write(file.path(), "second\n").unwrap();
        assert_eq!(credential.resolve().unwrap(), "second");
    }

    #[test]
    fn a_missing_file_names_the_path_only() {
        let error = Credential::new("/no/such/secret").resolve().unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("cannot read the credential file `/no/such/secret`")
        );
    }

    #[test]
    fn an_endless_file_is_refused_not_read_whole() {
        let error = Credential::new("/dev/zero").resolve().unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot read the credential file `/dev/zero`: the file is larger than 1048576 bytes"
        );
    }

    #[test]
    fn debug_never_shows_the_value() {
        let shown = format!("{:?}", Credential::new("hunter2"));
        assert_eq!(shown, "Credential(\"xxx\")");
        assert_eq!(format!("{:?}", Credential::default()), "Credential(\"\")");
    }
}
