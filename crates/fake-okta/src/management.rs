//! The fake's management API: a user's groups (`/api/v1/users/{id}/groups`, paged
//! with `Link` headers, `X-Rate-Limit-*`, steered failures and 429s) and a user's
//! status (`/api/v1/users/{id}`). It OWNS those answers' shapes; it must NOT
//! authenticate the service app's tokens itself (`service_app.rs` does).

use super::*;

pub(crate) async fn user_groups(
    req: HttpRequest,
    path: web::Path<String>,
    fake: web::Data<FakeOkta>,
) -> HttpResponse {
    let asked = path.into_inner();
    let delay = {
        let mut inner = fake.lock();
        let counted_as = inner
            .user_by_id_or_login(&asked)
            .map_or_else(|| asked.clone(), |u| u.id.clone());
        inner.calls.groups += 1;
        inner
            .calls
            .groups_times_by_user
            .entry(counted_as.clone())
            .or_default()
            .push(std::time::Instant::now());
        *inner.calls.groups_by_user.entry(counted_as).or_default() += 1;
        inner.groups_delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let now = now_secs();
    let mut inner = fake.lock();
    let window = now - now % 60;
    if inner.rate_window.0 != window {
        inner.rate_window = (window, 0);
    }
    inner.rate_window.1 += 1;
    let over_budget = inner.rate_window.1 > inner.rate_limit;
    let limited_until = inner
        .rate_limited_until
        .filter(|&until| now < until)
        .or(over_budget.then_some(window + 60));
    let rate = RateHeaders {
        limit: inner.rate_limit,
        remaining: match limited_until {
            Some(_) => 0,
            None => inner.rate_limit.saturating_sub(inner.rate_window.1),
        },
        reset: limited_until.unwrap_or(window + 60),
    };
    if let Err(refusal) = fake.api_caller(&req) {
        return refusal.answer(&rate);
    }
    if let Some(status) = inner.groups_failure {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return rate.okta_error(status, "E0000009", "Internal Server Error");
    }
    if limited_until.is_some() {
        return rate.okta_error(
            StatusCode::TOO_MANY_REQUESTS,
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
        );
    }
    let Some(user) = inner.user_by_id_or_login(&asked) else {
        let summary = format!("Not found: Resource not found: {asked} (User)");
        return rate.okta_error(StatusCode::NOT_FOUND, "E0000007", &summary);
    };

    let query = parse_pairs(req.query_string().as_bytes());
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let limit = get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|&l| l > 0)
        .unwrap_or(MAX_GROUPS_PAGE)
        .min(MAX_GROUPS_PAGE);
    let page_size = limit.min(inner.groups_page_size);
    let start = match get("after") {
        None => 0,
        // A cursor that matches nothing gives an empty page rather than a loop.
        Some(after) => user
            .groups
            .iter()
            .position(|(id, _)| id == after)
            .map_or(user.groups.len(), |i| i + 1),
    };
    let page: Vec<&(String, String)> = user.groups.iter().skip(start).take(page_size).collect();
    let body: Vec<Value> = page
        .iter()
        .map(|(id, name)| group_json(&fake.base_url(), id, name))
        .collect();

    let groups_url = format!("{}/api/v1/users/{}/groups", fake.base_url(), user.id);
    let self_link = match get("after") {
        Some(after) => format!(r#"<{groups_url}?after={after}&limit={limit}>; rel="self""#),
        None => format!(r#"<{groups_url}?limit={limit}>; rel="self""#),
    };
    let mut response = HttpResponse::Ok();
    rate.apply(&mut response);
    // Okta sends `self` and `next` as two separate Link headers.
    response.append_header((header::LINK, self_link));
    if start + page.len() < user.groups.len() {
        if let Some((last_id, _)) = page.last() {
            response.append_header((
                header::LINK,
                format!(r#"<{groups_url}?after={last_id}&limit={limit}>; rel="next""#),
            ));
        }
    }
    response.json(body)
}

/// `GET /api/v1/users/{id}` (Okta's Get User): the user object with its
/// `status`, 404 `E0000007` for an unknown user, 429 while rate-limited. Its
/// own per-minute bucket in Okta, so it does not count against the groups budget.
pub(crate) async fn get_user(
    req: HttpRequest,
    path: web::Path<String>,
    fake: web::Data<FakeOkta>,
) -> HttpResponse {
    let asked = path.into_inner();
    let now = now_secs();
    let mut inner = fake.lock();
    let counted_as = inner
        .user_by_id_or_login(&asked)
        .map_or_else(|| asked.clone(), |u| u.id.clone());
    *inner.calls.user_by_id.entry(counted_as).or_default() += 1;
    let limited_until = inner.rate_limited_until.filter(|&until| now < until);
    let rate = RateHeaders {
        limit: DEFAULT_RATE_LIMIT,
        remaining: if limited_until.is_some() {
            0
        } else {
            DEFAULT_RATE_LIMIT - 1
        },
        reset: limited_until.unwrap_or(now - now % 60 + 60),
    };
    if let Err(refusal) = fake.api_caller(&req) {
        return refusal.answer(&rate);
    }
    if limited_until.is_some() {
        return rate.okta_error(
            StatusCode::TOO_MANY_REQUESTS,
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
        );
    }
    let Some(user) = inner.user_by_id_or_login(&asked) else {
        let summary = format!("Not found: Resource not found: {asked} (User)");
        return rate.okta_error(StatusCode::NOT_FOUND, "E0000007", &summary);
    };
    let status = inner.statuses.get(&user.id).cloned().unwrap_or_else(|| {
        if user.active {
            "ACTIVE"
        } else {
            "DEPROVISIONED"
        }
        .to_string()
    });
    let base = fake.base_url();
    let (first, last) = user.name.split_once(' ').unwrap_or((&user.name, ""));
    let body = json!({
        "id": user.id,
        "status": status,
        "created": "2024-01-15T09:30:00.000Z",
        "activated": "2024-01-15T09:31:00.000Z",
        "statusChanged": "2024-06-01T12:00:00.000Z",
        "lastLogin": "2024-06-02T08:00:00.000Z",
        "lastUpdated": "2024-06-01T12:00:00.000Z",
        "passwordChanged": "2024-01-15T09:31:00.000Z",
        "type": { "id": "oty1fakeoktatype0000" },
        "profile": {
            "firstName": first,
            "lastName": last,
            "mobilePhone": null,
            "secondEmail": null,
            "login": user.login,
            "email": user.email,
        },
        "credentials": {
            "password": {},
            "provider": { "type": "OKTA", "name": "OKTA" },
        },
        "_links": {
            "self": { "href": format!("{base}/api/v1/users/{}", user.id) },
        },
    });
    let mut response = HttpResponse::Ok();
    rate.apply(&mut response);
    response.json(body)
}

pub(crate) fn group_json(base_url: &str, id: &str, name: &str) -> Value {
    let (kind, description) = if name == "Everyone" {
        ("BUILT_IN", "All users in your organization")
    } else {
        ("OKTA_GROUP", "")
    };
    json!({
        "id": id,
        "created": "2024-01-15T09:30:00.000Z",
        "lastUpdated": "2024-01-15T09:30:00.000Z",
        "lastMembershipUpdated": "2024-06-01T12:00:00.000Z",
        "objectClass": ["okta:user_group"],
        "type": kind,
        "profile": { "name": name, "description": description },
        "_links": {
            "logo": [
                {
                    "name": "medium",
                    "href": "https://ok12static.oktacdn.com/assets/img/logos/groups/okta-medium.png",
                    "type": "image/png"
                }
            ],
            "users": { "href": format!("{base_url}/api/v1/groups/{id}/users") },
            "apps": { "href": format!("{base_url}/api/v1/groups/{id}/apps") }
        }
    })
}

/// The `X-Rate-Limit-*` headers every management API response carries.
pub(crate) struct RateHeaders {
    pub(crate) limit: u64,
    pub(crate) remaining: u64,
    pub(crate) reset: u64,
}

impl RateHeaders {
    pub(crate) fn apply(&self, response: &mut actix_web::HttpResponseBuilder) {
        response
            .insert_header(("X-Rate-Limit-Limit", self.limit.to_string()))
            .insert_header(("X-Rate-Limit-Remaining", self.remaining.to_string()))
            .insert_header(("X-Rate-Limit-Reset", self.reset.to_string()));
    }

    pub(crate) fn okta_error(&self, status: StatusCode, code: &str, summary: &str) -> HttpResponse {
        let mut response = HttpResponse::build(status);
        self.apply(&mut response);
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "SSWS"));
        }
        response.json(json!({
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": format!("oae{}", &random_token()[..19]),
            "errorCauses": [],
        }))
    }
}
