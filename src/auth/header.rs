//! Finding the token in a request: `Authorization: Bearer <token>` everywhere
//! and, where the caller allows it (GET requests for streams and pages, since a
//! browser's EventSource cannot set headers), the `access_token` query
//! parameter of RFC 6750 §2.3.
//!
//! Strict on purpose: exactly one token by exactly one method (RFC 6750 §2),
//! so that a proxy or client that duplicates headers never makes the service
//! guess which token counts. Also [`redact_access_token`], for anything that
//! logs a request's query.

use std::borrow::Cow;

use axum::http::{HeaderMap, header::AUTHORIZATION};

use super::error::{AuthError, MAX_TOKEN_BYTES};

/// The query parameter that may carry a token (RFC 6750 §2.3).
pub const ACCESS_TOKEN_PARAM: &str = "access_token";

/// Where a request may carry its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPlaces {
    /// Only `Authorization: Bearer` (every request except the two below).
    HeaderOnly,
    /// The header or `?access_token=` (GET requests for streams and pages).
    HeaderOrQuery,
}

/// The request's one token, from its headers and (when `places` allows) its
/// raw query string. Never logs or echoes the token.
pub fn request_token<'a>(
    headers: &'a HeaderMap,
    query: Option<&'a str>,
    places: TokenPlaces,
) -> Result<Cow<'a, str>, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).into_iter();
    let header = values.next();
    if values.next().is_some() {
        return Err(AuthError::MultipleTokens);
    }
    let from_query =
        query.filter(|q| may_hold_access_token(q)).map(query_token).transpose()?.flatten();
    match (header, from_query, places) {
        (_, Some(_), TokenPlaces::HeaderOnly) => Err(AuthError::QueryNotAllowed),
        (Some(_), Some(_), TokenPlaces::HeaderOrQuery) => Err(AuthError::MultipleTokens),
        (Some(value), None, _) => bearer_token(value.as_bytes()).map(Cow::Borrowed),
        (None, Some(token), TokenPlaces::HeaderOrQuery) => Ok(token),
        (None, None, _) => Err(AuthError::Missing),
    }
}

/// The token of one `Authorization` header value: the `Bearer` scheme (any
/// case), one or more spaces, and one RFC 6750 `b64token`.
///
/// On every authenticated request, so it works on bytes in few passes (the
/// `str` version, with char patterns and a set search per byte, cost about a
/// microsecond a request, the largest part of auth's cost on `/collect`).
pub fn bearer_token(value: &[u8]) -> Result<&str, AuthError> {
    if value.len() > MAX_TOKEN_BYTES + 64 {
        return Err(AuthError::TooLarge);
    }
    // What clients send, `Bearer <token>`, in one pass over the token: a
    // valid b64token is ASCII without blanks, so the checks below would all
    // pass. Anything else takes the general path, which says what is wrong.
    if let Some(token) = value.strip_prefix(b"Bearer ")
        && check_token_text(token).is_ok()
        && let Ok(token) = std::str::from_utf8(token)
    {
        return Ok(token);
    }
    if !value.is_ascii() {
        return Err(AuthError::MalformedHeader("it is not plain ASCII"));
    }
    let value = trim_blanks_end(trim_blanks_start(value));
    let (scheme, rest) = match value.iter().position(|&b| is_blank(b)) {
        Some(at) => value.split_at(at),
        None => (value, &[][..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(AuthError::MalformedHeader("its scheme is not Bearer"));
    }
    let token = trim_blanks_start(rest);
    if token.is_empty() {
        return Err(AuthError::MalformedHeader("no token follows `Bearer`"));
    }
    if token.iter().any(|&b| is_blank(b)) {
        return Err(AuthError::MalformedHeader(
            "more than one word follows `Bearer`; send exactly one token",
        ));
    }
    check_token_text(token)?;
    // ASCII (checked above), so UTF-8.
    std::str::from_utf8(token).map_err(|_| AuthError::MalformedHeader("it is not plain ASCII"))
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_blanks_start(mut bytes: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = bytes
        && is_blank(*first)
    {
        bytes = rest;
    }
    bytes
}

fn trim_blanks_end(mut bytes: &[u8]) -> &[u8] {
    while let [rest @ .., last] = bytes
        && is_blank(*last)
    {
        bytes = rest;
    }
    bytes
}

/// Whether a raw query string can hold an `access_token` parameter: only if
/// the name is written out or something is percent-encoded. Saves decoding
/// every query (`/collect?vehicle_id=…`) on every request.
fn may_hold_access_token(query: &str) -> bool {
    query.contains(ACCESS_TOKEN_PARAM) || query.contains('%')
}

/// The `access_token` parameter of a raw query string, if there is one.
fn query_token(query: &str) -> Result<Option<Cow<'_, str>>, AuthError> {
    let mut found = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if name == ACCESS_TOKEN_PARAM {
            if found.is_some() {
                return Err(AuthError::MultipleTokens);
            }
            found = Some(value);
        }
    }
    found
        .map(|token| {
            if token.is_empty() {
                return Err(AuthError::Malformed("the `access_token` parameter is empty"));
            }
            check_token_text(token.as_bytes())?;
            Ok(token)
        })
        .transpose()
}

/// The bytes of an RFC 6750 `b64token` before its padding, as a table.
const B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] =
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    table
};

/// RFC 6750's `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn check_token_text(token: &[u8]) -> Result<(), AuthError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::TooLarge);
    }
    let padding = token.iter().rev().take_while(|&&b| b == b'=').count();
    let body = &token[..token.len() - padding];
    // A fold, not `all`: without an exit per byte the loop unrolls.
    let valid =
        !body.is_empty() && body.iter().fold(true, |valid, &b| valid & B64TOKEN[usize::from(b)]);
    if valid {
        Ok(())
    } else {
        Err(AuthError::Malformed("it has characters a bearer token cannot have"))
    }
}

/// `query` with every `access_token` value replaced by `REDACTED`, for logs
/// and traces (the issue: such a query is never logged, not even at debug).
pub fn redact_access_token(query: &str) -> Cow<'_, str> {
    let is_token = |pair: &str| {
        form_urlencoded::parse(pair.as_bytes())
            .next()
            .is_some_and(|(name, _)| name == ACCESS_TOKEN_PARAM)
    };
    if !query.split('&').any(is_token) {
        return Cow::Borrowed(query);
    }
    let redacted: Vec<&str> = query
        .split('&')
        .map(|pair| if is_token(pair) { "access_token=REDACTED" } else { pair })
        .collect();
    Cow::Owned(redacted.join("&"))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_spaces_around_the_token_do_not_matter() {
        for value in ["Bearer abc.def.ghi", "bearer abc.def.ghi", "BEARER   abc.def.ghi  "] {
            assert_eq!(bearer_token(value.as_bytes()), Ok("abc.def.ghi"), "{value:?}");
        }
        assert_eq!(bearer_token(b"Bearer a-b_c~d+e/f=="), Ok("a-b_c~d+e/f=="));
    }

    #[test]
    fn anything_but_one_bearer_token_is_refused() {
        let cases: [(&[u8], &str); 9] = [
            (b"", "invalid_token"),
            (b"Bearer", "invalid_token"),
            (b"Bearer ", "invalid_token"),
            (b"Basic dXNlcjpwYXNz", "invalid_token"),
            (b"Bearer a.b.c d.e.f", "invalid_token"),
            (b"Bearer a.b,c", "invalid_token"),
            (b"Bearer ==", "invalid_token"),
            (b"Bearer \xc3\xa9", "invalid_token"),
            (b"Bearera.b.c", "invalid_token"),
        ];
        for (value, label) in cases {
            let error = bearer_token(value).unwrap_err();
            assert_eq!(error.reason(), label, "{value:?}");
        }
        let huge = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert_eq!(bearer_token(huge.as_bytes()), Err(AuthError::TooLarge));
    }

    #[test]
    fn a_request_carries_exactly_one_token_by_one_method() {
        use TokenPlaces::*;
        let none = headers(&[]);
        let one = headers(&["Bearer h.h.h"]);
        let two = headers(&["Bearer h.h.h", "Bearer i.i.i"]);
        assert_eq!(request_token(&one, Some("x=1"), HeaderOnly).as_deref(), Ok("h.h.h"));
        assert_eq!(
            request_token(&none, Some("access_token=q.q.q"), HeaderOrQuery).as_deref(),
            Ok("q.q.q")
        );
        assert_eq!(request_token(&none, None, HeaderOrQuery), Err(AuthError::Missing));
        assert_eq!(request_token(&two, None, HeaderOnly), Err(AuthError::MultipleTokens));
        assert_eq!(
            request_token(&one, Some("access_token=q.q.q"), HeaderOrQuery),
            Err(AuthError::MultipleTokens)
        );
        assert_eq!(
            request_token(&none, Some("access_token=q&access_token=r"), HeaderOrQuery),
            Err(AuthError::MultipleTokens)
        );
        assert_eq!(
            request_token(&none, Some("access_token=q.q.q"), HeaderOnly),
            Err(AuthError::QueryNotAllowed)
        );
        assert_eq!(
            request_token(&none, Some("access_token="), HeaderOrQuery).unwrap_err().reason(),
            "invalid_token"
        );
        // A percent-encoded name is the same parameter.
        assert_eq!(
            request_token(&none, Some("access%5Ftoken=q.q.q"), HeaderOrQuery).as_deref(),
            Ok("q.q.q")
        );
    }

    #[test]
    fn redaction_hides_every_access_token_and_keeps_the_rest() {
        assert_eq!(redact_access_token("vehicle_id=car-1"), "vehicle_id=car-1");
        assert_eq!(
            redact_access_token("a=1&access_token=secret.jwt.x&access%5Ftoken=y&b=2"),
            "a=1&access_token=REDACTED&access_token=REDACTED&b=2"
        );
    }

    /// The first, `str`-based version of [`bearer_token`], kept as the
    /// reference the faster one must agree with.
    fn reference_bearer_token(value: &[u8]) -> Result<&str, AuthError> {
        if value.len() > MAX_TOKEN_BYTES + 64 {
            return Err(AuthError::TooLarge);
        }
        let value = std::str::from_utf8(value)
            .ok()
            .filter(|v| v.is_ascii())
            .ok_or(AuthError::MalformedHeader("it is not plain ASCII"))?
            .trim_matches([' ', '\t']);
        let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::MalformedHeader("its scheme is not Bearer"));
        }
        let token = rest.trim_start_matches([' ', '\t']);
        if token.is_empty() {
            return Err(AuthError::MalformedHeader("no token follows `Bearer`"));
        }
        if token.contains([' ', '\t']) {
            return Err(AuthError::MalformedHeader(
                "more than one word follows `Bearer`; send exactly one token",
            ));
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TooLarge);
        }
        let body = token.trim_end_matches('=');
        let valid = !body.is_empty()
            && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
        if valid {
            Ok(token)
        } else {
            Err(AuthError::Malformed("it has characters a bearer token cannot have"))
        }
    }

    proptest::proptest! {
        #[test]
        fn bearer_token_agrees_with_its_reference(
            value in proptest::collection::vec(
                proptest::sample::select(
                    b"Bb earER\t=a.Z9-_~+/,\xc3\xa9\x00\x0c".to_vec()
                ),
                0..40,
            ),
            prefix in proptest::sample::select(vec!["", "Bearer ", "bearer\t ", " BEARER  "]),
        ) {
            let value = [prefix.as_bytes(), &value].concat();
            proptest::prop_assert_eq!(bearer_token(&value), reference_bearer_token(&value));
        }
    }
}
