//! The error sets of the OpenAPI document: which problem answers each kind of
//! operation may give, with each status (and `Retry-After`) taken from
//! [`ProblemKind`]'s one table rather than written again as literals.

use std::collections::BTreeMap;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, PartialSchema, ToSchema};

use super::super::problem::{Problem, ProblemKind};

/// One documented error answer: the problem kinds it covers, all of one status,
/// and what it tells a client.
struct ErrorAnswer {
    kinds: &'static [ProblemKind],
    description: &'static str,
}

/// The responses of an error set, with each status, and whether it carries
/// `Retry-After`, taken from [`ProblemKind`]'s table (utoipa's derive would
/// want them written again as literals).
fn error_responses(answers: &[ErrorAnswer]) -> BTreeMap<String, RefOr<Response>> {
    answers
        .iter()
        .map(|answer| {
            let status = answer.kinds[0].status();
            assert!(
                answer.kinds.iter().all(|kind| kind.status() == status),
                "one documented answer per status: {:?}",
                answer.kinds
            );
            let mut response = ResponseBuilder::new().description(answer.description).content(
                "application/problem+json",
                Content::new(Some(Ref::from_schema_name(Problem::name()))),
            );
            if answer.kinds.iter().any(|kind| kind.challenges()) {
                let challenge = HeaderBuilder::new().schema(String::schema()).description(Some(
                    "`Bearer realm=\"tributary\", error=\"…\", error_description=\"…\"`",
                ));
                response = response.header("WWW-Authenticate", challenge.build());
            }
            if answer.kinds.iter().any(|kind| kind.retry_after()) {
                let seconds = HeaderBuilder::new()
                    .schema(u32::schema())
                    .description(Some("Seconds to wait before retrying"));
                response = response.header("Retry-After", seconds.build());
            }
            (status.as_str().to_owned(), response.build().into())
        })
        .collect()
}

/// What reading a JSON request body can answer (see `body.rs`).
pub(in crate::http) struct BodyErrors;

impl BodyErrors {
    const ANSWERS: &[ErrorAnswer] = &[
        ErrorAnswer {
            kinds: &[ProblemKind::MalformedBody, ProblemKind::TokenRequest],
            description: "The body is not JSON (`malformed-body`), or the token was sent twice or \
                          in the query (`invalid-token-request`).",
        },
        ErrorAnswer {
            kinds: &[ProblemKind::BodyTimeout],
            description: "The body did not arrive within the client timeout.",
        },
        ErrorAnswer { kinds: &[ProblemKind::BodyTooLarge], description: "The body is over 1 MiB." },
        ErrorAnswer {
            kinds: &[ProblemKind::UnsupportedEncoding],
            description: "A `Content-Encoding` other than `gzip`, `deflate`, `zstd` or `identity`.",
        },
    ];
}

/// How a request that writes readings is refused when the service or its
/// store cannot take it: rate limit, overload, store failure.
pub(in crate::http) struct WriteErrors;

impl WriteErrors {
    const ANSWERS: &[ErrorAnswer] = &[
        ErrorAnswer {
            kinds: &[ProblemKind::Internal],
            description: "Internal error, logged; the readings may or may not have been stored.",
        },
        ErrorAnswer {
            kinds: &[ProblemKind::RateLimited],
            description: "The vehicle's rate limit (`rate-limited`): nothing was stored; `limit`\n\
                          says which limit and when to retry.",
        },
        ErrorAnswer {
            kinds: &[ProblemKind::VehicleLimit],
            description: "The vehicle is new and the store holds as many vehicles as it may\n\
                          (`vehicle-limit`: `TRIBUTARY_MAX_VEHICLES`, or Redis' `maxmemory`);\n\
                          nothing was stored. Vehicles it holds keep working.",
        },
        ErrorAnswer {
            kinds: &[ProblemKind::Overloaded, ProblemKind::StoreUnavailable],
            description: "The server is at its in-flight limit (`overloaded`: refused unread), or\n\
                          the store is unavailable (`store-unavailable`: the readings\n\
                          may or may not have been stored, as a Redis call that timed out may still\n\
                          have been applied). Retrying with the same device `timestamp` is\n\
                          idempotent; without one, a retry may store the reading twice.",
        },
    ];
}

/// How a request that only reads is refused when the service or its store
/// cannot answer: overload, store failure.
pub(in crate::http) struct ReadErrors;

impl ReadErrors {
    const ANSWERS: &[ErrorAnswer] = &[
        ErrorAnswer { kinds: &[ProblemKind::Internal], description: "Internal error, logged." },
        ErrorAnswer {
            kinds: &[ProblemKind::StoreUnavailable, ProblemKind::Overloaded],
            description: "The store is unavailable (`store-unavailable`), or the server is at its\n\
                          in-flight limit (`overloaded`); retry shortly.",
        },
    ];
}

/// How a request that needs a token is refused for it (see `auth`). Both
/// carry a `WWW-Authenticate` challenge (RFC 6750 §3).
pub(in crate::http) struct AuthErrors;

impl AuthErrors {
    const ANSWERS: &[ErrorAnswer] = &[
        ErrorAnswer {
            kinds: &[ProblemKind::Unauthorized],
            description: "No token, or one that does not verify (malformed, bad signature, \
                          expired, not yet valid, wrong issuer or audience); `detail` says which.",
        },
        ErrorAnswer {
            kinds: &[ProblemKind::Forbidden],
            description: "The token lacks the scope (`scope`) or does not hold the vehicle \
                          (`vehicle`); nothing was read or stored.",
        },
    ];
}

/// How a live stream is refused when the service or its store cannot open
/// it: the stream limit, overload, store failure.
pub(in crate::http) struct StreamErrors;

impl StreamErrors {
    const ANSWERS: &[ErrorAnswer] = &[
        ErrorAnswer { kinds: &[ProblemKind::Internal], description: "Internal error, logged." },
        ErrorAnswer {
            kinds: &[ProblemKind::StoreUnavailable, ProblemKind::Overloaded],
            description: "The store is unavailable (`store-unavailable`), or the instance serves\n\
                          its limit of streams (`TRIBUTARY_MAX_STREAMS`) or is at its in-flight limit\n\
                          (`overloaded`); retry after `Retry-After`.",
        },
    ];
}

/// How a request with no body is refused for sending its token wrongly.
pub(in crate::http) struct TokenErrors;

impl TokenErrors {
    const ANSWERS: &[ErrorAnswer] = &[ErrorAnswer {
        kinds: &[ProblemKind::TokenRequest],
        description: "The token was sent twice, or in the query where only the header counts.",
    }];
}

/// Each error set documents its answers from its `ANSWERS` table.
macro_rules! error_sets {
    ($($set:ident),+) => {$(
        impl IntoResponses for $set {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                error_responses(Self::ANSWERS)
            }
        }
    )+};
}

error_sets!(BodyErrors, WriteErrors, ReadErrors, AuthErrors, TokenErrors, StreamErrors);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_for_several_problem_types_names_each_of_them() {
        for answers in [
            BodyErrors::ANSWERS,
            WriteErrors::ANSWERS,
            ReadErrors::ANSWERS,
            AuthErrors::ANSWERS,
            TokenErrors::ANSWERS,
            StreamErrors::ANSWERS,
        ] {
            for answer in answers.iter().filter(|answer| answer.kinds.len() > 1) {
                for kind in answer.kinds {
                    let slug = format!("`{}`", kind.slug());
                    assert!(answer.description.contains(&slug), "{slug}: {}", answer.description);
                }
            }
        }
    }
}
