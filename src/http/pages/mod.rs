//! The pages: the car view a driver opens on a phone (`/`, `/vehicles/{id}`)
//! and the fleet view an operator opens on a desktop (`/fleet`).
//!
//! Plain HTML, CSS and JavaScript in `assets/`, compiled into the binary: no
//! build step, no files to deploy, and nothing fetched from another origin, so
//! the pages work on a network without internet. The scripts call only the
//! public API (`/v1/...`) with `fetch` and `EventSource`, so they are also the
//! example a mobile developer reads. No framework: the two pages are small
//! enough that one would weigh more than the code it saves.
//!
//! Asset URLs carry a hash of their content (`/assets/car.3f9a….js`), so a
//! browser may keep them for a year and still sees a new release at once; the
//! pages themselves are `no-cache`. Every answer carries a
//! Content-Security-Policy that allows this origin only and no inline code.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::http::problem::ApiError;

/// Nothing from another origin, no inline script or style, no framing, and
/// forms that post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; manifest-src 'self'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// `Cache-Control` of an asset named by its hash: it never changes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `Cache-Control` of a page, and of an asset asked for by its plain name:
/// the browser asks again every time.
const NO_CACHE: &str = "no-cache";

/// A file compiled into the binary.
struct Asset {
    /// Its plain name, as the page templates refer to it (`{{car.js}}`).
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("assets/app.css"),
    },
    Asset {
        name: "common.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/common.js"),
    },
    Asset {
        name: "car.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/car.js"),
    },
    Asset {
        name: "fleet.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/fleet.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("assets/favicon.svg"),
    },
];

const CAR_TEMPLATE: &str = include_str!("assets/car.html");
const FLEET_TEMPLATE: &str = include_str!("assets/fleet.html");

/// The pages with their asset URLs filled in, and every asset by the names it
/// answers to (hashed and plain), worked out once.
struct Site {
    car: String,
    fleet: String,
    /// URL name → (asset, whether the name carries the content hash).
    assets: HashMap<String, (&'static Asset, bool)>,
}

static SITE: LazyLock<Site> = LazyLock::new(Site::build);

impl Site {
    fn build() -> Self {
        let mut assets = HashMap::new();
        let mut car = CAR_TEMPLATE.to_owned();
        let mut fleet = FLEET_TEMPLATE.to_owned();
        for asset in ASSETS {
            let hashed = hashed_name(asset);
            let placeholder = format!("{{{{{}}}}}", asset.name);
            let url = format!("/assets/{hashed}");
            car = car.replace(&placeholder, &url);
            fleet = fleet.replace(&placeholder, &url);
            assets.insert(hashed, (asset, true));
            assets.insert(asset.name.to_owned(), (asset, false));
        }
        Self { car, fleet, assets }
    }
}

/// `car.js` → `car.0123456789abcdef.js`. The hash only has to change when the
/// content does (std's SipHash, stable within one binary, is plenty for that):
/// it is a cache key, not a security measure.
fn hashed_name(asset: &Asset) -> String {
    let mut hasher = std::hash::DefaultHasher::new();
    asset.body.hash(&mut hasher);
    let hash = hasher.finish();
    match asset.name.rsplit_once('.') {
        Some((stem, extension)) => format!("{stem}.{hash:016x}.{extension}"),
        None => format!("{}.{hash:016x}", asset.name),
    }
}

/// The pages' routes, merged by `http::router` (outside the OpenAPI document:
/// they are HTML for people, not API). They need no state.
pub(super) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(car_page))
        .route("/vehicles/{vehicle_id}", get(car_page))
        .route("/fleet", get(fleet_page))
        .route("/assets/{file}", get(asset))
        .layer(map_response(security_headers))
}

/// The car view, for any vehicle id: the page itself checks the id and says
/// what is wrong with a bad one, beside the picker to type another.
async fn car_page() -> Response {
    page(&SITE.car)
}

async fn fleet_page() -> Response {
    page(&SITE.fleet)
}

fn page(html: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, NO_CACHE)], html)
        .into_response()
}

async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    let Some(&(asset, hashed)) = SITE.assets.get(&file) else {
        return Err(ApiError::NotFound(format!("there is no asset {file:?}")));
    };
    let cache = if hashed { IMMUTABLE } else { NO_CACHE };
    Ok(([(header::CONTENT_TYPE, asset.content_type), (header::CACHE_CONTROL, cache)], asset.body)
        .into_response())
}

/// The security headers of every answer under these routes, errors included.
async fn security_headers(mut response: Response) -> Response {
    const HEADERS: [(HeaderName, &str); 5] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
    ];
    let headers = response.headers_mut();
    for (name, value) in HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;

    /// The budget for everything a page loads.
    const PAGE_WEIGHT_BUDGET: usize = 150 * 1024;

    async fn get(uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let request = Request::get(uri).body(Body::empty()).unwrap();
        let response = routes::<()>().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, headers, String::from_utf8(body.to_vec()).unwrap())
    }

    /// The asset URLs a page refers to (`/assets/…` in `src` or `href`).
    fn asset_urls(html: &str) -> Vec<String> {
        html.split("\"/assets/")
            .skip(1)
            .map(|rest| format!("/assets/{}", &rest[..rest.find('"').unwrap()]))
            .collect()
    }

    #[tokio::test]
    async fn pages_carry_the_security_headers_and_are_not_cached() {
        for uri in ["/", "/vehicles/sim-001", "/fleet"] {
            let (status, headers, body) = get(uri).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8", "{uri}");
            assert_eq!(headers[header::CACHE_CONTROL], NO_CACHE, "{uri}");
            assert_eq!(headers[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY, "{uri}");
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{uri}");
            assert_eq!(headers[header::REFERRER_POLICY], "no-referrer", "{uri}");
            assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY", "{uri}");
            assert!(body.starts_with("<!doctype html>"), "{uri}");
        }
    }

    #[tokio::test]
    async fn every_placeholder_is_filled_and_every_asset_url_answers_immutably() {
        for page in [&SITE.car, &SITE.fleet] {
            assert!(!page.contains("{{"), "an unfilled placeholder: {page}");
            let urls = asset_urls(page);
            assert!(urls.len() >= 4, "{urls:?}");
            for url in urls {
                let (status, headers, _) = get(&url).await;
                assert_eq!(status, StatusCode::OK, "{url}");
                assert_eq!(headers[header::CACHE_CONTROL], IMMUTABLE, "{url}");
                assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{url}");
            }
        }
    }

    #[tokio::test]
    async fn a_plain_asset_name_is_revalidated_and_an_unknown_one_is_a_problem() {
        let (status, headers, body) = get("/assets/car.js").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CACHE_CONTROL], NO_CACHE);
        assert_eq!(headers[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert!(body.contains("EventSource"));

        let (status, headers, body) = get("/assets/nope.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
        assert!(body.contains("nope.js"), "{body}");
    }

    #[test]
    fn a_hashed_name_changes_with_the_content() {
        let a = Asset { name: "x.js", content_type: "", body: b"1" };
        let b = Asset { name: "x.js", content_type: "", body: b"2" };
        assert_ne!(hashed_name(&a), hashed_name(&b));
        assert!(hashed_name(&a).starts_with("x.") && hashed_name(&a).ends_with(".js"));
    }

    #[test]
    fn each_page_weighs_less_than_the_budget() {
        for page in [&SITE.car, &SITE.fleet] {
            let assets: usize = asset_urls(page)
                .iter()
                .map(|url| SITE.assets[url.trim_start_matches("/assets/")].0.body.len())
                .sum();
            let weight = page.len() + assets;
            assert!(weight < PAGE_WEIGHT_BUDGET, "{weight} bytes");
        }
    }

    /// Inline code would be refused by the policy: the page would silently not work.
    #[test]
    fn the_pages_have_no_inline_script_or_style() {
        for page in [&SITE.car, &SITE.fleet] {
            assert!(!page.contains("style=\""), "an inline style attribute");
            assert!(!page.contains("<style"), "an inline style element");
            let handler = page.split(" on").skip(1).find(|rest| {
                let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
                name_len > 0 && rest[name_len..].starts_with('=')
            });
            assert!(handler.is_none(), "an inline event handler: on{}", handler.unwrap_or(""));
            for script in page.split("<script").skip(1) {
                assert!(script.starts_with(" defer src=\"/assets/"), "an inline script: {script}");
            }
        }
    }
}
