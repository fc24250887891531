//! [`Verifier::explain`]: why a request is accepted or refused, step by step.
//!
//! The report is recorded by the code that verifies: the step functions of `hs256`,
//! `es256` and `body` take an `Observe`r and tell it which step they enter, how each
//! token ended and what each digest compared. [`Verifier::verify`] passes `()`, whose
//! hooks are empty and inlined away (the functions are generic, so the verify path is
//! compiled as before); [`Verifier::explain`] passes a recorder. The verdict in the
//! report is the `Result` that path returned: explain and verify cannot disagree.

use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::HeaderMap;

use super::policy::Token;
use super::{Policy, Start, Verifier};
use crate::claims::DtClaims;
use crate::error::{DtSignatureError, ErrorKind, Scheme};

/// What the verification path tells an observer. Every hook does nothing by default: the
/// observer of [`Verifier::verify`] is `()`.
pub(crate) trait Observe {
    /// The token of `scheme` enters `step`; the step before it passed.
    #[inline(always)]
    fn enter(&mut self, scheme: Scheme, step: Step) {
        let _ = (scheme, step);
    }

    /// The token of `scheme` ended before the body: valid (`None`) or refused.
    #[inline(always)]
    fn token(&mut self, scheme: Scheme, error: Option<&DtSignatureError>) {
        let _ = (scheme, error);
    }

    /// A checksum claim of `scheme`'s token compared with the body's digest.
    #[inline(always)]
    fn digest(
        &mut self,
        scheme: Scheme,
        claim: &'static str,
        claimed: &[u8],
        computed: &[u8],
        matches: bool,
    ) {
        let _ = (scheme, claim, claimed, computed, matches);
    }
}

/// The observer of [`Verifier::verify`]: nothing is recorded.
impl Observe for () {}

/// The token state's refusal, for [`Observe::token`].
pub(crate) fn token_error<P>(token: &Token<P>) -> Option<&DtSignatureError> {
    match token {
        Token::Valid(_) => None,
        Token::Absent(error) | Token::Invalid(error) | Token::Uncheckable(error) => Some(error),
    }
}

/// One step of a token's verification, in the order the verifier takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// The signature header: exactly one, at most 8 KiB, visible ASCII.
    Header,
    /// The token: three dot-separated parts.
    Token,
    /// The JOSE header: base64url JSON, `alg` exactly HS256 or ES256, no `crit`; for
    /// ES256 a `kid`.
    JoseHeader,
    /// ES256: the signature is base64url of 64 bytes (r || s).
    SignatureEncoding,
    /// ES256: the JOSE header's `kid` in the key set.
    KeyLookup,
    /// The signature over `header.payload`: HMAC-SHA256 under the secrets, or ES256
    /// under the key found.
    Signature,
    /// The claims: base64url JSON object, each claim of its type.
    Claims,
    /// ES256: `iss` is the key set's issuer.
    Issuer,
    /// `exp` present and not passed, `iat` and `nbf` not in the future (with the leeway).
    Times,
    /// ES256: `sub` is your organization.
    Organization,
    /// The checksum claims: present as required, each hex of its digest's length.
    Checksums,
    /// The body's digests against the checksum claims.
    Body,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 12] = [
        Step::Header,
        Step::Token,
        Step::JoseHeader,
        Step::SignatureEncoding,
        Step::KeyLookup,
        Step::Signature,
        Step::Claims,
        Step::Issuer,
        Step::Times,
        Step::Organization,
        Step::Checksums,
        Step::Body,
    ];

    /// A short name: `header`, `token`, `jose_header`, `signature_encoding`, `key_lookup`,
    /// `signature`, `claims`, `issuer`, `times`, `organization`, `checksums`, `body`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Step::Header => "header",
            Step::Token => "token",
            Step::JoseHeader => "jose_header",
            Step::SignatureEncoding => "signature_encoding",
            Step::KeyLookup => "key_lookup",
            Step::Signature => "signature",
            Step::Claims => "claims",
            Step::Issuer => "issuer",
            Step::Times => "times",
            Step::Organization => "organization",
            Step::Checksums => "checksums",
            Step::Body => "body",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one step ended: passed, or refused with this kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepOutcome {
    /// The step.
    pub step: Step,
    /// `Ok` when it passed, else the kind of the refusal.
    pub result: Result<(), ErrorKind>,
}

/// One checksum claim against the body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DigestCheck {
    /// `checksum` (SHA-1) or `checksum_sha256`.
    pub claim: &'static str,
    /// The token's value, lowercase hex.
    pub claimed: String,
    /// The body's digest, lowercase hex.
    pub computed: String,
    /// Whether they are equal (compared in constant time, as `verify` does).
    pub matches: bool,
}

/// One signature token the policy reads, as the verifier saw it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TokenExplanation {
    /// Which token.
    pub scheme: Scheme,
    /// The steps taken, in order, each with its outcome; the last refused one (if any)
    /// is why the token was refused. Steps after a refusal are not taken.
    pub steps: Vec<StepOutcome>,
    /// The token's refusal before the body (`None`: every check that needs no body
    /// passed).
    pub error: Option<DtSignatureError>,
    /// The JOSE header's JSON as the token carries it, if it decodes (for reading).
    pub jose_header: Option<String>,
    /// The claims' JSON as the token carries it, if they decode (for reading).
    pub claims: Option<String>,
    /// `kid`, `exp`, `iat` and `nbf`, read from the decoded JSON when present and of
    /// their type (for reading: the steps say what the verifier made of them).
    pub kid: Option<String>,
    /// See [`kid`](Self::kid).
    pub exp: Option<u64>,
    /// See [`kid`](Self::kid).
    pub iat: Option<u64>,
    /// See [`kid`](Self::kid).
    pub nbf: Option<u64>,
    /// `iss` and `sub` (the DT organization), as [`kid`](Self::kid).
    pub iss: Option<String>,
    /// See [`iss`](Self::iss).
    pub sub: Option<String>,
    /// The body's digests against the token's checksums, when the body was compared
    /// (only when the policy's decision before the body let the request through).
    pub digests: Vec<DigestCheck>,
}

impl TokenExplanation {
    fn new(scheme: Scheme) -> Self {
        Self {
            scheme,
            steps: Vec::new(),
            error: None,
            jose_header: None,
            claims: None,
            kid: None,
            exp: None,
            iat: None,
            nbf: None,
            iss: None,
            sub: None,
            digests: Vec::new(),
        }
    }

    /// The outcome of `step`, if it was taken.
    pub fn step(&self, step: Step) -> Option<Result<(), ErrorKind>> {
        self.steps.iter().find(|s| s.step == step).map(|s| s.result)
    }

    /// The header the token travels in, as DT spells it: `X-Dt-Signature` or
    /// `DT-Asymmetric-Signature`.
    pub fn header_name(&self) -> &'static str {
        match self.scheme {
            Scheme::Asymmetric => "DT-Asymmetric-Signature",
            _ => "X-Dt-Signature",
        }
    }
}

/// Why a request is accepted or refused: each token the policy reads, step by step, then
/// the policy's decision, the very `Result` [`Verifier::verify`] returns for it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Explanation {
    /// The verifier's policy.
    pub policy: Policy,
    /// The clock the times were checked against.
    pub now: SystemTime,
    /// The clock skew tolerated.
    pub leeway: Duration,
    /// The tokens, `X-Dt-Signature` first.
    pub tokens: Vec<TokenExplanation>,
    /// The decision: what [`Verifier::verify`] returns.
    pub verdict: Result<DtClaims, DtSignatureError>,
}

impl Explanation {
    /// The token of `scheme`, if the policy read it.
    pub fn token(&self, scheme: Scheme) -> Option<&TokenExplanation> {
        self.tokens.iter().find(|token| token.scheme == scheme)
    }
}

/// The recorder of [`Verifier::explain`].
#[derive(Default)]
struct Recorder {
    tokens: Vec<TokenExplanation>,
}

impl Recorder {
    fn of(&mut self, scheme: Scheme) -> &mut TokenExplanation {
        let at = match self.tokens.iter().position(|t| t.scheme == scheme) {
            Some(at) => at,
            None => {
                let mut token = TokenExplanation::new(scheme);
                // Anything entered comes after the header was read.
                token.steps.push(StepOutcome {
                    step: Step::Header,
                    result: Ok(()),
                });
                self.tokens.push(token);
                self.tokens.len() - 1
            }
        };
        &mut self.tokens[at]
    }
}

impl Observe for Recorder {
    fn enter(&mut self, scheme: Scheme, step: Step) {
        self.of(scheme).steps.push(StepOutcome {
            step,
            result: Ok(()),
        });
    }

    fn token(&mut self, scheme: Scheme, error: Option<&DtSignatureError>) {
        let token = self.of(scheme);
        if let Some(error) = error {
            let last = token.steps.last_mut().expect("the header step is first");
            last.result = Err(error.kind());
            token.error = Some(error.clone());
        }
    }

    fn digest(
        &mut self,
        scheme: Scheme,
        claim: &'static str,
        claimed: &[u8],
        computed: &[u8],
        matches: bool,
    ) {
        self.of(scheme).digests.push(DigestCheck {
            claim,
            claimed: hex::encode(claimed),
            computed: hex::encode(computed),
            matches,
        });
    }
}

impl Verifier {
    /// Verify a request as [`verify`](Self::verify) does, by the same code, and report
    /// each token's steps and the decision. The report holds what the request carries
    /// (decoded JOSE headers, claims, checksums and the body's digests), never a secret.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use http::HeaderMap;
    /// use tower_dt_signature::verify::explain::Step;
    /// use tower_dt_signature::{ErrorKind, Scheme, Verifier};
    ///
    /// let verifier = Verifier::new("test-secret").clock(|| UNIX_EPOCH + Duration::from_secs(1_644_496_933));
    /// let mut headers = HeaderMap::new();
    /// headers.insert("x-dt-signature", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2ln".parse().unwrap());
    /// let explanation = verifier.explain(&headers, b"{}");
    /// let token = explanation.token(Scheme::Hmac).unwrap();
    /// assert_eq!(token.step(Step::Signature), Some(Err(ErrorKind::InvalidSignature)));
    /// assert_eq!(explanation.verdict.unwrap_err().kind(), ErrorKind::InvalidSignature);
    /// ```
    pub fn explain(&self, headers: &HeaderMap, body: &[u8]) -> Explanation {
        let config = &*self.inner;
        let now = config.clock.now();
        let mut recorder = Recorder::default();
        // `verify`, with the recorder: `begin`, `update`, `finish`.
        let begun = match self.start_observed(headers, false, &mut recorder) {
            Start::Done(result) => result,
            // Not asked for (no wait), as in `begin`.
            Start::Wait(mut wait) => wait.resume(headers),
        };
        let verdict = begun.and_then(|mut pending| {
            pending.update(body);
            pending.finish_observed(&mut recorder)
        });
        let mut tokens = recorder.tokens;
        for token in &mut tokens {
            if !token.digests.is_empty() {
                let result = match token.digests.iter().all(|d| d.matches) {
                    true => Ok(()),
                    false => Err(ErrorKind::ChecksumMismatch),
                };
                token.steps.push(StepOutcome {
                    step: Step::Body,
                    result,
                });
            }
            if token.step(Step::Header) == Some(Ok(())) {
                read_token(token, headers);
            }
        }
        Explanation {
            policy: config.policy,
            now,
            leeway: config.leeway,
            tokens,
            verdict,
        }
    }
}

/// The decoded JOSE header and claims of the token, for reading (nothing is decided
/// here: the steps were recorded by the verifier).
fn read_token(token: &mut TokenExplanation, headers: &HeaderMap) {
    let Some(text) = headers
        .get(token.header_name())
        .and_then(|value| value.to_str().ok())
    else {
        return;
    };
    let mut parts = text.split('.');
    let decode = |part: Option<&str>| {
        let bytes = URL_SAFE_NO_PAD.decode(part?).ok()?;
        String::from_utf8(bytes).ok()
    };
    token.jose_header = decode(parts.next());
    token.claims = decode(parts.next());
    let field = |json: &Option<String>, name: &str| -> Option<serde_json::Value> {
        let value: serde_json::Value = serde_json::from_str(json.as_deref()?).ok()?;
        value.get(name).cloned()
    };
    let text_of = |value: Option<serde_json::Value>| value?.as_str().map(str::to_owned);
    token.kid = text_of(field(&token.jose_header, "kid"));
    token.iss = text_of(field(&token.claims, "iss"));
    token.sub = text_of(field(&token.claims, "sub"));
    token.exp = field(&token.claims, "exp").and_then(|v| v.as_u64());
    token.iat = field(&token.claims, "iat").and_then(|v| v.as_u64());
    token.nbf = field(&token.claims, "nbf").and_then(|v| v.as_u64());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::X_DT_SIGNATURE;
    use crate::verify::hs256::tests::{
        dt_claims, mint, sha1_hex, verifier_at, with, BODY, DT_HEADER, NOW, SECRET,
    };

    fn headers(token: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(token) = token {
            headers.insert(X_DT_SIGNATURE, token.parse().unwrap());
        }
        headers
    }

    /// The send tool's HMAC tamper kinds, and a valid request: `explain`'s verdict is
    /// `verify`'s, and the last step taken is the one that refused.
    #[test]
    fn explain_decides_as_verify_for_each_tamper_kind() {
        let valid = with(|_| {});
        let mut flipped = valid.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == 'A' { 'B' } else { 'A' });
        let mut tampered_body = BODY.to_vec();
        tampered_body[3] ^= 1;
        let expired = with(|c| {
            c.insert("iat".into(), (NOW - 7200).into());
            c.insert("exp".into(), (NOW - 3600).into());
        });
        let other = b"another body";
        /// A case: its name, the token (`None`: no header), the body, the failing step.
        type Row<'a> = (&'a str, Option<String>, &'a [u8], Option<Step>);
        let rows: Vec<Row<'_>> = vec![
            ("valid", Some(valid.clone()), BODY, None),
            (
                "body byte",
                Some(valid.clone()),
                &tampered_body,
                Some(Step::Body),
            ),
            ("signature", Some(flipped), BODY, Some(Step::Signature)),
            (
                "other secret",
                Some(mint(DT_HEADER, &dt_claims(BODY).to_string(), "other")),
                BODY,
                Some(Step::Signature),
            ),
            ("expired", Some(expired), BODY, Some(Step::Times)),
            ("no signature", None, BODY, Some(Step::Header)),
            (
                "other body",
                Some(mint(DT_HEADER, &dt_claims(other).to_string(), SECRET)),
                BODY,
                Some(Step::Body),
            ),
            (
                "checksum not hex",
                Some(with(|c| {
                    c.insert("checksum".into(), "zz".into());
                })),
                BODY,
                Some(Step::Checksums),
            ),
            (
                "claims not json",
                Some(mint(DT_HEADER, "[", SECRET)),
                BODY,
                Some(Step::Claims),
            ),
            (
                "alg none",
                Some(mint(r#"{"alg":"none"}"#, "{}", SECRET)),
                BODY,
                Some(Step::JoseHeader),
            ),
            ("two parts", Some("a.b".into()), BODY, Some(Step::Token)),
        ];
        {
            let policy_verifier = verifier_at(NOW);
            for (name, token, body, refused_at) in &rows {
                let headers = headers(token.as_deref());
                let verified = policy_verifier.verify(&headers, body);
                let explained = policy_verifier.explain(&headers, body);
                assert_eq!(
                    explained
                        .verdict
                        .as_ref()
                        .map_err(|e| (e.kind(), e.scheme())),
                    verified.as_ref().map_err(|e| (e.kind(), e.scheme())),
                    "{name}"
                );
                assert_eq!(
                    explained.verdict.as_ref().ok(),
                    verified.as_ref().ok(),
                    "{name}"
                );
                let token = explained.token(Scheme::Hmac).expect("the policy reads it");
                let last = token.steps.last().unwrap();
                match (refused_at, &verified) {
                    (None, Ok(_)) => {
                        assert!(token.steps.iter().all(|s| s.result.is_ok()), "{name}");
                        assert_eq!(last.step, Step::Body, "{name}");
                    }
                    (Some(step), Err(error)) => {
                        assert_eq!(
                            (last.step, last.result),
                            (*step, Err(error.kind())),
                            "{name}"
                        );
                        let passed = &token.steps[..token.steps.len() - 1];
                        assert!(passed.iter().all(|s| s.result.is_ok()), "{name}");
                    }
                    _ => panic!("{name}: {verified:?}"),
                }
            }
        }
    }

    #[test]
    fn the_report_shows_claims_and_digests_never_the_secret() {
        let token = with(|_| {});
        let mut body = BODY.to_vec();
        body.push(b'\n');
        let explained = verifier_at(NOW).explain(&headers(Some(&token)), &body);
        let hmac = explained.token(Scheme::Hmac).unwrap();
        assert_eq!(hmac.jose_header.as_deref(), Some(DT_HEADER));
        assert_eq!((hmac.iat, hmac.exp), (Some(NOW), Some(NOW + 3600)));
        let sha1 = &hmac.digests[0];
        assert_eq!(
            (sha1.claim, sha1.claimed.as_str()),
            ("checksum", sha1_hex(BODY).as_str())
        );
        assert_eq!(sha1.computed, sha1_hex(&body));
        assert!(!sha1.matches);
        assert_eq!(
            hmac.step(Step::Body),
            Some(Err(ErrorKind::ChecksumMismatch))
        );
        assert!(!format!("{explained:?}").contains(SECRET));
    }

    #[test]
    fn every_step_is_listed_once_in_order() {
        let names: Vec<&str> = Step::ALL.iter().map(|s| s.as_str()).collect();
        let unique: std::collections::HashSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len());
        assert_eq!(Step::ALL.len(), 12);
    }
}
