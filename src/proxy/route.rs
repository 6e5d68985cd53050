//! Routes: which upstream a request goes to, and the path it arrives at.
//!
//! Everything goes to `upstream.url` (the default route) unless a `[[routes]]` prefix
//! matches; the longest matching prefix wins. A prefix matches whole segments: `/crm/` and
//! `/crm` both match `/crm` and `/crm/v6/Leads`, never `/crmx`. The request's path then goes
//! to the route's upstream URL:
//! - by default, appended to the URL's path (`https://gw.example.zoho.com/zoho` +
//!   `/api/v2/user.json`);
//! - with `strip_prefix = true`, the rest of the path after the prefix is appended to the
//!   URL's path with one `/` between them (`/download/webdownload?x` →
//!   `https://download.zoho.com/webdownload?x`).
//!
//! The query is kept byte for byte. A route whose URL has no path and strips nothing leaves
//! the target untouched (no copy): the common case, Meeting at its host's root.

use std::sync::Arc;

use http::header::HeaderValue;
use http::uri::PathAndQuery;
use http::{Uri, uri};

use crate::config::{Config, RouteConfig};
use crate::upstream::{Upstream, UpstreamError};

/// One upstream the proxy forwards to. See the [module docs](self).
pub struct Route {
    /// Its place among [`Routes`].
    index: usize,
    /// The prefix without its trailing `/`; `None` for the default route.
    prefix: Option<String>,
    strip: bool,
    /// The upstream URL's path without a trailing `/` (`""` at the root).
    base: String,
    /// Where the request goes.
    pub(crate) upstream: Arc<Upstream>,
    /// The upstream's place among [`Upstreams`]: a client connection's upstream connections
    /// to it.
    pub(crate) slot: usize,
    /// The upstream's `host[:port]`, for `Host`.
    pub(crate) host: HeaderValue,
    /// The `route` label of the metrics: the prefix as configured, or `default`.
    label: String,
}

/// Every route, the longest prefix first and the default route last.
pub struct Routes {
    routes: Vec<Route>,
}

/// The upstream clients, one per origin, shared by every route of every account that goes
/// there (two accounts of one data centre share their Meeting host's connections: the token
/// travels in each request, not in the connection). A reload only adds to them, so an
/// upstream keeps its slot, and a client connection its upstream connections.
#[derive(Clone, Default)]
pub struct Upstreams {
    list: Vec<(String, Arc<Upstream>)>,
}

/// Why the routes could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// An upstream client could not be built.
    #[error("cannot set up the upstream of {route}")]
    Upstream {
        /// The route, as `check` names it.
        route: String,
        /// The cause.
        #[source]
        source: UpstreamError,
    },
    /// An upstream URL has no host that can be a `Host` header (validation prevents it).
    #[error("the upstream of {route} has no usable host")]
    Host {
        /// The route.
        route: String,
    },
}

// === impl Routes ===

impl Routes {
    /// The routes of `config`: its `[[routes]]` in order, then `upstream.url`.
    ///
    /// # Errors
    /// [`RouteError`] when an upstream client cannot be built.
    pub fn new(config: &Config) -> Result<Self, RouteError> {
        Self::with_upstreams(config, &mut Upstreams::default())
    }

    /// [`Routes::new`], taking the upstream clients from `upstreams` (and adding any
    /// missing).
    ///
    /// # Errors
    /// As [`Routes::new`].
    pub fn with_upstreams(config: &Config, upstreams: &mut Upstreams) -> Result<Self, RouteError> {
        let mut routes = Vec::with_capacity(config.routes.len() + 1);
        for (index, route) in config.routes.iter().enumerate() {
            routes.push(Route::new(index, config, Some(route), upstreams)?);
        }
        routes.push(Route::new(config.routes.len(), config, None, upstreams)?);
        Ok(Self { routes })
    }

    /// The route for `path` and its [index](Route::index).
    pub fn select(&self, path: &str) -> (usize, &Route) {
        let last = self.routes.len() - 1;
        let route = self
            .routes
            .iter()
            .find(|r| r.matches(path))
            .unwrap_or(&self.routes[last]);
        (route.index, route)
    }

    /// Every route.
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    /// The metrics label of every route, in order.
    pub fn labels(&self) -> Vec<String> {
        self.routes.iter().map(|r| r.label.clone()).collect()
    }
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.routes.iter().map(|r| &r.label))
            .finish()
    }
}

// === impl Upstreams ===

impl Upstreams {
    /// The client for `url`'s origin, made when there is none yet, and its slot.
    fn get(
        &mut self,
        config: &Config,
        url: &url::Url,
        label: &str,
    ) -> Result<(usize, Arc<Upstream>), RouteError> {
        let origin = url.origin().ascii_serialization();
        if let Some(slot) = self.list.iter().position(|(o, _)| *o == origin) {
            return Ok((slot, self.list[slot].1.clone()));
        }
        let mut upstream_config = config.upstream.clone();
        upstream_config.url = url.clone();
        let upstream = Upstream::new(&upstream_config).map_err(|source| RouteError::Upstream {
            route: label.to_owned(),
            source,
        })?;
        self.list.push((origin, Arc::new(upstream)));
        Ok((
            self.list.len() - 1,
            self.list[self.list.len() - 1].1.clone(),
        ))
    }

    /// Every client, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Upstream>> {
        self.list.iter().map(|(_, upstream)| upstream)
    }
}

impl std::fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.list.iter().map(|(origin, _)| origin))
            .finish()
    }
}

// === impl Route ===

impl Route {
    /// The route at `index` for `config`'s `route`, or its default route.
    fn new(
        index: usize,
        config: &Config,
        route: Option<&RouteConfig>,
        upstreams: &mut Upstreams,
    ) -> Result<Self, RouteError> {
        let (url, label) = match route {
            Some(r) => (config.route_url(r), r.prefix.clone()),
            None => (config.upstream.url.clone(), "default".to_owned()),
        };
        let (slot, upstream) = upstreams.get(config, &url, &label)?;
        let host = upstream
            .authority()
            .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok())
            .ok_or_else(|| RouteError::Host {
                route: label.clone(),
            })?;
        Ok(Self {
            index,
            prefix: route.map(|r| r.prefix.trim_end_matches('/').to_owned()),
            strip: route.is_some_and(|r| r.strip_prefix),
            base: url.path().trim_end_matches('/').to_owned(),
            upstream,
            slot,
            host,
            label,
        })
    }

    /// Whether `path` is the prefix or below it (whole segments).
    fn matches(&self, path: &str) -> bool {
        match &self.prefix {
            None => true,
            Some(prefix) => path
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
        }
    }

    /// The target to send upstream for the origin-form `uri`, or `None` when it is
    /// unchanged. A target that is not a path (`OPTIONS *`) is left alone: appended to a
    /// base path (`/zoho*`) it would name a path outside it.
    pub fn target(&self, uri: &Uri) -> Option<Uri> {
        let path = uri.path();
        if (self.base.is_empty() && !self.strip) || !path.starts_with('/') {
            return None;
        }
        let path = match (&self.prefix, self.strip) {
            (Some(prefix), true) => {
                // `prefix` or `prefix/rest`: only the one `/` after the prefix goes, so that
                // `/crm//x` keeps its empty segment, which the access rules saw.
                let rest = path.get(prefix.len()..).unwrap_or("");
                let rest = rest.strip_prefix('/').unwrap_or(rest);
                format!("{}/{rest}", self.base)
            }
            _ => format!("{}{path}", self.base),
        };
        let path_and_query = match uri.query() {
            Some(query) => format!("{path}?{query}"),
            None => path,
        };
        let mut parts = uri::Parts::default();
        parts.path_and_query = Some(PathAndQuery::try_from(path_and_query).ok()?);
        Uri::from_parts(parts).ok()
    }

    /// Its place among [`Routes`], the same as in [`Routes::labels`]: the metrics' `route`
    /// label, and a client connection's upstream connections for it.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The metrics label: the prefix as configured, or `default`.
    pub fn label(&self) -> &str {
        &self.label
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(routes: &str, upstream: &str) -> Config {
        let figment = figment::Figment::new()
            .merge(<figment::providers::Toml as figment::providers::Format>::string(routes))
            .merge(("oauth.data_center", "eu"))
            .merge(("upstream.url", upstream));
        Config::from_figment(&figment, None).unwrap()
    }

    fn target(routes: &Routes, t: &str) -> (String, String) {
        let uri: Uri = t.parse().unwrap();
        let (_, route) = routes.select(uri.path());
        let sent = route.target(&uri).unwrap_or(uri);
        (route.label().to_owned(), sent.to_string())
    }

    #[test]
    fn the_longest_prefix_wins_on_whole_segments() {
        let c = config(
            r#"
            [[routes]]
            prefix = "/crm/"
            upstream = "zohoapis"
            [[routes]]
            prefix = "/crm/v6/special"
            upstream = "https://special.zoho.com/base"
            strip_prefix = true
            [[routes]]
            prefix = "/download"
            upstream = "https://download.zoho.com"
            strip_prefix = true
            "#,
            "https://meeting.zoho.eu",
        );
        let routes = Routes::new(&c).unwrap();
        assert_eq!(
            routes.labels(),
            ["/crm/v6/special", "/download", "/crm/", "default"]
        );
        for (sent, label, expected) in [
            ("/api/v2/user.json", "default", "/api/v2/user.json"),
            ("/crm/v6/Leads?x=1", "/crm/", "/crm/v6/Leads?x=1"),
            ("/crm", "/crm/", "/crm"),
            ("/crmx/a", "default", "/crmx/a"),
            ("/crm/v6/special/a?b", "/crm/v6/special", "/base/a?b"),
            ("/crm/v6/specialty", "/crm/", "/crm/v6/specialty"),
            (
                "/download/webdownload?x=%2F",
                "/download",
                "/webdownload?x=%2F",
            ),
            ("/download", "/download", "/"),
        ] {
            assert_eq!(
                target(&routes, sent),
                (label.to_owned(), expected.to_owned())
            );
        }
        let hosts: Vec<&str> = routes.iter().map(|r| r.host.to_str().unwrap()).collect();
        assert_eq!(
            hosts,
            [
                "special.zoho.com",
                "download.zoho.com",
                "www.zohoapis.eu",
                "meeting.zoho.eu"
            ]
        );
    }

    #[test]
    fn a_base_path_goes_before_every_path_and_the_root_is_left_alone() {
        let routes = Routes::new(&config("", "https://gw.example.zoho.com/zoho/")).unwrap();
        assert_eq!(
            target(&routes, "/api/v2/user.json?a=b"),
            ("default".into(), "/zoho/api/v2/user.json?a=b".into())
        );
        let root = Routes::new(&config("", "https://meeting.zoho.com")).unwrap();
        let uri: Uri = "/api/v2/x".parse().unwrap();
        assert!(root.select(uri.path()).1.target(&uri).is_none());
    }

    /// Caught by the `route_target` fuzz target (seed `strip_double_slash`): stripping the
    /// prefix removed every `/` after it, so `/crm//x` went upstream as `/base/x`, a path the
    /// access rules never saw (`GET /crm/*/Leads` allowed `/crm//Leads`, forwarded as
    /// `/base/Leads`).
    #[test]
    fn stripping_the_prefix_keeps_empty_segments() {
        let c = config(
            r#"
            [[routes]]
            prefix = "/download/"
            upstream = "https://download.zoho.com"
            strip_prefix = true
            [[routes]]
            prefix = "/crm"
            upstream = "https://crm.zoho.com/base"
            strip_prefix = true
            "#,
            "https://meeting.zoho.eu",
        );
        let routes = Routes::new(&c).unwrap();
        for (sent, label, expected) in [
            ("/download//x?a", "/download/", "//x?a"),
            ("/download//", "/download/", "//"),
            ("/download/", "/download/", "/"),
            ("/crm//Leads", "/crm", "/base//Leads"),
            ("/crm///a//b/", "/crm", "/base///a//b/"),
        ] {
            assert_eq!(
                target(&routes, sent),
                (label.to_owned(), expected.to_owned())
            );
        }
    }

    /// Caught by the `route_target` fuzz target (seed `asterisk_base`): `OPTIONS *` on a route
    /// with a base path went upstream as `OPTIONS /zoho*`, a path outside the base path.
    #[test]
    fn an_asterisk_target_is_not_put_after_a_base_path() {
        let c = config(
            r#"
            [[routes]]
            prefix = "/"
            upstream = "https://download.zoho.com/files"
            strip_prefix = true
            "#,
            "https://gw.example.zoho.com/zoho/",
        );
        let routes = Routes::new(&c).unwrap();
        let asterisk: Uri = "*".parse().unwrap();
        let (_, route) = routes.select(asterisk.path());
        assert_eq!(route.label(), "default");
        assert!(route.target(&asterisk).is_none());
        assert_eq!(target(&routes, "*"), ("default".into(), "*".into()));
        for route in routes.iter() {
            assert!(route.target(&asterisk).is_none(), "{}", route.label());
        }
    }
}
