//! Content codings, around every route: request bodies in gzip, deflate or
//! zstd are decompressed as they are read (tower-http's `RequestDecompression`,
//! so `body`'s size limit counts decompressed bytes), and answers of 1 KiB or
//! more (the OpenAPI document, signal windows, metrics) are compressed for a
//! client that sends `Accept-Encoding` (tower-http's `Compression`); the small
//! answers that sensors get back, `/record`'s above all, are too small to gain
//! from it, and `text/event-stream` is never compressed (it would be buffered).
//!
//! Why a switch in front of the two layers, hand-written: most requests name
//! no coding at all (a sensor's `/record`, curl, the seed's clients), and for
//! them the layers change nothing yet cost 3,600 instructions of a Redis
//! `/collect`'s 60,000 (callgrind, `bench/instructions collect redis
//! tributary`, with and without them): each wraps the request's body, the
//! answer's body and the future, the absent `Accept-Encoding` is parsed, and
//! the body is boxed once more. So a request with no `Content-Encoding`, and
//! no `Accept-Encoding` or only `identity` (what Python's `http.client` sends),
//! goes straight to the routes, and its answer gets the
//! one thing the compression layer adds to an answer it leaves uncompressed:
//! `Vary: Accept-Encoding` when it would have compressed it for a client
//! that asked. Every other request takes the layers, unchanged.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use futures_util::future::{Either, FutureExt, Map};
use tower::util::{MapRequest, MapResponse, Oneshot};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_http::compression::predicate::{And, NotForContentType, Predicate, SizeAbove};
use tower_http::compression::{Compression, CompressionLayer};
use tower_http::decompression::{
    DecompressionBody, RequestDecompression, RequestDecompressionLayer,
};

/// Smallest answer worth compressing: below it, the header and the CPU
/// cost more than the bytes saved.
const COMPRESS_FROM_BYTES: u64 = 1024;

/// Which answers are compressed, for a client that accepts a coding.
type WorthCompressing =
    And<And<And<SizeAbove, NotForContentType>, NotForContentType>, NotForContentType>;

fn worth_compressing() -> WorthCompressing {
    SizeAbove::new(COMPRESS_FROM_BYTES)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE)
}

/// The two layers, around a service `S`; answers as axum's.
type Coded<S> = MapResponse<
    RequestDecompression<MapRequest<Compression<S, WorthCompressing>, ToBody>>,
    fn(Response<tower_http::body::UnsyncBoxBody<bytes::Bytes, tower_http::BoxError>>) -> Response,
>;
type ToBody = fn(Request<DecompressionBody<axum::body::Body>>) -> Request;

/// The layer: [`Codings`] around each route.
#[derive(Debug, Clone, Copy, Default)]
pub struct CodingsLayer;

impl<S> Layer<S> for CodingsLayer {
    type Service = Codings<S>;

    fn layer(&self, inner: S) -> Codings<S> {
        Codings(inner)
    }
}

/// tower-http's two layers around `inner`, answering as axum does. Built for
/// each request that names a coding (they hold only flags and the predicate:
/// no allocation), rather than kept beside the plain service, which made
/// every request clone the route's service twice (callgrind: 276 more
/// instructions a Redis `/collect`).
fn coded<S: Service<Request, Response = Response>>(inner: S) -> Coded<S> {
    let to_body: ToBody = |request| request.map(axum::body::Body::new);
    ServiceBuilder::new()
        .map_response(
            (|answer: Response<_>| answer.map(axum::body::Body::new)) as fn(_) -> Response,
        )
        // An encoding it does not know is left for `body` to refuse with a
        // problem that lists the accepted ones.
        .layer(RequestDecompressionLayer::new().pass_through_unaccepted(true))
        .map_request(to_body)
        .layer(CompressionLayer::new().compress_when(worth_compressing()))
        .service(inner)
}

/// A request that names a coding goes through tower-http's layers; any other
/// straight to `S` (see the module's doc).
#[derive(Clone)]
pub struct Codings<S>(S);

type Plain<F> = Map<F, fn(Result<Response, Infallible>) -> Result<Response, Infallible>>;

impl<S> Service<Request> for Codings<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Plain<S::Future>, Oneshot<Coded<S>, Request>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let headers = request.headers();
        if headers.contains_key(header::CONTENT_ENCODING)
            || !headers.get_all(header::ACCEPT_ENCODING).iter().all(|value| value == "identity")
        {
            // A clone, made ready by `oneshot`, as axum's routes call theirs.
            return Either::Right(coded(self.0.clone()).oneshot(request));
        }
        Either::Left(self.0.call(request).map(vary as fn(_) -> _))
    }
}

/// What tower-http's compression adds to an answer for a client that sent no
/// `Accept-Encoding`: nothing, unless the answer is one it would compress
/// for a client that asked, which then says that it varies by that header.
fn vary(answer: Result<Response, Infallible>) -> Result<Response, Infallible> {
    let Ok(mut answer) = answer;
    let headers = answer.headers();
    let accept_encoding = header::ACCEPT_ENCODING.as_str().as_bytes();
    if !headers.contains_key(header::CONTENT_ENCODING)
        && !headers.contains_key(header::CONTENT_RANGE)
        && worth_compressing().should_compress(&answer)
        && !headers.get_all(header::VARY).iter().any(|value| {
            value
                .as_bytes()
                .windows(accept_encoding.len())
                .any(|w| w.eq_ignore_ascii_case(accept_encoding))
        })
    {
        answer.headers_mut().append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    Ok(answer)
}
