//! `tributary healthcheck`: the container HEALTHCHECK, without curl in the image.

use crate::config::HealthcheckSettings;

/// Whether `settings.url` answers 200 within the timeout. Proxies from the
/// environment are ignored: the check is always about this host.
pub async fn check(settings: &HealthcheckSettings) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(settings.timeout)
        .build()
        .map_err(|e| e.to_string())?;
    let response =
        client.get(&settings.url).send().await.map_err(|e| format!("{}: {e}", settings.url))?;
    if response.status() == reqwest::StatusCode::OK {
        Ok(())
    } else {
        Err(format!("{} answered {}", settings.url, response.status()))
    }
}
