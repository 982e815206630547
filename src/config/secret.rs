//! The Redis URL as a secret: it may hold a password, so it cannot be printed
//! by accident. `Debug` and `Display` show it with the password masked; only
//! [`RedisUrl::expose`] gives the URL itself, to the code that connects.

use std::fmt;

/// A Redis URL, as given (trimmed).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// The URL itself, password included: only for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the URL is empty (`TRIBUTARY_REDIS_URL=` means none).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The URL with any password replaced, safe to log.
    pub fn redacted(&self) -> String {
        let Some((scheme, rest)) = self.0.split_once("://") else {
            return "<unparseable>".into();
        };
        match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => self.0.clone(),
        }
    }
}

impl From<String> for RedisUrl {
    fn from(url: String) -> Self {
        Self(url.trim().to_owned())
    }
}

impl From<&str> for RedisUrl {
    fn from(url: &str) -> Self {
        Self(url.trim().to_owned())
    }
}

impl std::str::FromStr for RedisUrl {
    type Err = std::convert::Infallible;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        Ok(url.into())
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({:?})", self.redacted())
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        let url = RedisUrl::from("redis://:s3cret@redis:6379/2");
        assert_eq!(url.redacted(), "redis://***@redis:6379/2");
        assert!(!format!("{url} {url:?}").contains("s3cret"));
        assert_eq!(RedisUrl::from("redis://redis:6379").redacted(), "redis://redis:6379");
        assert!(RedisUrl::from(" ").is_empty());
    }
}
