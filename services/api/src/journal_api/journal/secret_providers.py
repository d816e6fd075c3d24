"""Provider tokens that public secret scanners recognise without a keyword: a literal prefix and an alphabet.

Data only: each row is ``(rule id, prefix, body)``; :mod:`journal_api.journal.secret_rules` turns them into rules
whose trigger is the prefix. Lengths are lower bounds a little below each format's own, so that a token a provider
lengthens is still caught; the whole token, prefix included, is masked (docs/20_EVENT_JOURNAL.md#redaction).
"""

from __future__ import annotations

__all__ = ["PROVIDER_TOKENS", "SHORT_PREFIX_TRIGGERS"]

_B62 = "[A-Za-z0-9]"
_URLSAFE = "[A-Za-z0-9_-]"
_HEX = "[a-fA-F0-9]"

PROVIDER_TOKENS: tuple[tuple[str, str, str], ...] = (
    # cloud
    ("aws-access-key-id", r"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])", "[A-Z0-9]{16}"),
    ("gcp-api-key", r"AIza", _URLSAFE + "{30,}"),
    ("gcp-oauth-client-secret", r"GOCSPX-", _URLSAFE + "{20,}"),
    ("gcp-oauth-access-token", r"ya29\.", _URLSAFE + "{20,}"),
    ("azure-ad-client-secret", r"[a-zA-Z0-9_~.]{3}[0-9]Q~", "[a-zA-Z0-9_~.-]{31,}"),
    ("digitalocean-token", r"do[opr]_v1_", _HEX + "{64}"),
    ("alibaba-access-key-id", r"LTAI", _B62 + "{12,}"),
    ("yandex-api-key", r"AQVN", _URLSAFE + "{30,}"),
    ("yandex-access-token", r"t1\.[A-Za-z0-9_-]+={0,2}\.", _URLSAFE + "{80,}={0,2}"),
    ("heroku-api-key", r"HRKU-", _URLSAFE + "{40,}"),
    ("cloudflare-origin-ca-key", r"v1\.0-", _HEX + "{24}-" + _HEX + "{140,}"),
    ("flyio-token", r"(?:fo1_|fm1[ar]_|fm2_)", "[A-Za-z0-9+/=_-]{40,}"),
    ("tailscale-key", r"tskey-", "[A-Za-z0-9-]{20,}"),
    ("vault-service-token", r"hv[sb]\.", _URLSAFE + "{60,}"),
    ("terraform-cloud-token", r"[A-Za-z0-9]{14}\.atlasv1\.", "[A-Za-z0-9_=-]{60,}"),
    ("pulumi-token", r"pul-", _HEX + "{40}"),
    ("doppler-token", r"dp\.(?:pt|st|ct|sa|scim|audit)\.", _B62 + "{40,}"),
    ("databricks-token", r"dapi", _HEX + "{32}(?:-[0-9])?"),
    ("planetscale-token", r"pscale_(?:tkn|pw|oauth)_", "[A-Za-z0-9=._-]{32,}"),
    ("prefect-token", r"pnu_", _B62 + "{36}"),
    ("octopus-deploy-key", r"API-", "[A-Z0-9]{26}"),
    ("onepassword-service-token", r"ops_eyJ", "[A-Za-z0-9+/=_-]{100,}"),
    (
        "onepassword-secret-key",
        r"A3-",
        "[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}",
    ),
    ("age-secret-key", r"AGE-SECRET-KEY-1", "[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}"),
    ("openshift-token", r"sha256~", _URLSAFE + "{43}"),
    ("jfrog-token", r"(?:AKCp|cmVmdGtuOjAxOj)", _B62 + "{40,}"),
    ("sourcegraph-token", r"sgp_", "(?:[a-fA-F0-9]{16}_|local_)?[a-fA-F0-9]{40}"),
    ("harness-token", r"pat\.", _URLSAFE + r"{22}\.[0-9a-f]{24}\." + _B62 + "{20}"),
    ("infracost-key", r"ico-", _B62 + "{32}"),
    ("scalingo-token", r"tk-us-", _URLSAFE + "{40,}"),
    ("settlemint-token", r"sm_(?:pat|aat|sat)_", _B62 + "{16}"),
    ("defined-networking-key", r"dnkey-", "[a-z0-9=_-]{26}-[a-z0-9=_-]{52}"),
    ("clojars-token", r"CLOJARS_", "[a-z0-9]{60}"),
    ("dynatrace-token", r"dt0c01\.", r"[A-Z0-9]{24}\.[A-Z0-9]{64}"),
    ("easypost-key", r"EZ[AT]K", _B62 + "{40,}"),
    ("supabase-token", r"(?:sbp_|sb_secret_)", _URLSAFE + "{32,}"),
    ("render-key", r"rnd_", _B62 + "{32}"),
    ("vercel-token", r"vc[pikar]_", _B62 + "{24,}"),
    (
        "launchdarkly-key",
        r"(?:api|sdk)-",
        _HEX + "{8}-" + _HEX + "{4}-" + _HEX + "{4}-" + _HEX + "{4}-" + _HEX + "{12}",
    ),
    # code hosting and packages
    ("github-token", r"(?:ghp|gho|ghu|ghs|ghr)_", _B62 + "{30,}"),
    ("github-fine-grained-pat", r"github_pat_", "[A-Za-z0-9_]{60,}"),
    (
        "gitlab-token",
        r"(?:glpat|gldt|glrt|glrtr|glcbt|glptt|glft|glimt|glagent|gloas|glsoat|glffct|glsoat)-",
        _URLSAFE + "{20,}",
    ),
    ("gitlab-runner-registration-token", r"GR1348941", _URLSAFE + "{20,}"),
    ("bitbucket-app-password", r"ATBB", "[A-Za-z0-9_=.-]{28,}"),
    ("atlassian-api-token", r"AT(?:ATT|CTT)3", "[A-Za-z0-9_=-]{60,}"),
    ("npm-token", r"npm_", _B62 + "{36}"),
    ("pypi-token", r"pypi-(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)", _URLSAFE + "{40,}"),
    ("rubygems-key", r"rubygems_", _HEX + "{48}"),
    ("nuget-key", r"oy2", "[a-z0-9]{43}"),
    ("linear-api-key", r"lin_api_", _B62 + "{40}"),
    ("postman-key", r"PMAK-", _HEX + "{24}-" + _HEX + "{34}"),
    ("readme-key", r"rdme_", "[a-z0-9]{70}"),
    ("contentful-token", r"CFPAT-", _URLSAFE + "{43}"),
    ("figma-token", r"figd_", _URLSAFE + "{40}"),
    ("typeform-token", r"tfp_", "[A-Za-z0-9_.=-]{50,}"),
    ("frameio-token", r"fio-u-", "[A-Za-z0-9_=-]{64}"),
    ("adobe-client-secret", r"p8e-", "[A-Za-z0-9]{32}"),
    ("intra42-secret", r"s-s4t2(?:ud|af)-", _HEX + "{64}"),
    ("airtable-token", r"pat[A-Za-z0-9]{14}\.", _HEX + "{64}"),
    ("notion-token", r"(?:secret_|ntn_)", _B62 + "{40,}"),
    # chat
    ("slack-token", r"xox[baprse]-", "[A-Za-z0-9-]{10,}"),
    ("slack-config-token", r"xoxe\.xox[bp]-", "[0-9]-[A-Za-z0-9]{100,}"),
    ("slack-app-token", r"xapp-", r"[0-9]-[A-Z0-9]+-[0-9]+-[a-z0-9]+"),
    ("telegram-bot-token", r"[0-9]{8,10}:AA", _URLSAFE + "{30,}"),
    ("twitter-bearer-token", r"AAAAAAAAAAAAAAAAAAAAA", "[A-Za-z0-9%]{30,}"),
    ("facebook-access-token", r"EAA[A-Z]", _B62 + "{60,}"),
    # payment
    ("stripe-secret-key", r"(?:sk|rk)_(?:live|test|prod)_", _B62 + "{10,}"),
    ("stripe-webhook-secret", r"whsec_", _B62 + "{32,}"),
    ("square-token", r"(?:EAAA|sq0atp-|sq0csp-)", _URLSAFE + "{22,}"),
    ("shopify-token", r"shp(?:at|ca|pa|ss)_", _HEX + "{32}"),
    ("braintree-token", r"access_token\$(?:production|sandbox)\$", r"[0-9a-z]{16}\$[0-9a-f]{32}"),
    ("razorpay-key", r"rzp_(?:live|test)_", _B62 + "{14}"),
    ("flutterwave-key", r"FLW(?:SECK|PUBK)(?:_TEST)?-", "[a-hA-H0-9]{12,}(?:-X)?"),
    ("duffel-token", r"duffel_(?:test|live)_", "[A-Za-z0-9_=-]{40,}"),
    ("shippo-token", r"shippo_(?:live|test)_", _HEX + "{40}"),
    ("gocardless-token", r"live_", "(?=[A-Za-z0-9_=-]*[0-9])(?=[A-Za-z0-9_=-]*[A-Z])[A-Za-z0-9_=-]{40}"),
    # AI
    ("openai-api-key", r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{0,80}T3BlbkFJ", _URLSAFE + "{16,}"),
    ("openai-project-key", r"sk-(?:proj|svcacct|admin)-", _URLSAFE + "{40,}"),
    ("anthropic-api-key", r"sk-ant-", _URLSAFE + "{32,}"),
    ("legacy-sk-api-key", r"sk-", _B62 + "{32,}"),
    ("huggingface-token", r"(?:hf_|api_org_)", _B62 + "{30,}"),
    ("groq-api-key", r"gsk_", _B62 + "{40,}"),
    ("perplexity-api-key", r"pplx-", _B62 + "{40,}"),
    ("replicate-token", r"r8_", _B62 + "{30,}"),
    ("xai-api-key", r"xai-", _B62 + "{60,}"),
    ("langsmith-key", r"lsv2_(?:pt|sk)_", _HEX + "{32}_" + _HEX + "{10}"),
    # monitoring
    ("sentry-token", r"(?:sntrys_eyJ|sntryu_)", "[A-Za-z0-9+/=_-]{40,}"),
    ("newrelic-key", r"NR(?:AK|JS|II|AA)-", "[A-Za-z0-9-]{19,}"),
    ("grafana-cloud-token", r"glc_", "[A-Za-z0-9+/]{32,}={0,2}"),
    ("grafana-service-account-token", r"glsa_", _B62 + "{32}_" + _HEX + "{8}"),
    ("grafana-api-key", r"eyJrIjoi", "[A-Za-z0-9]{60,}={0,2}"),
    # mail and messaging
    ("sendgrid-api-key", r"SG\.", _URLSAFE + r"{16,}\." + _URLSAFE + "{16,}"),
    ("twilio-api-key", r"SK", _HEX + "{32}(?![A-Za-z0-9])"),
    ("mailgun-key", r"(?:pub)?key-", "[0-9a-z]{32}"),
    ("mailchimp-key", r"[0-9a-f]{32}-us", "[0-9]{1,2}"),
    ("brevo-key", r"x(?:keysib|smtpsib)-", _HEX + "{64}-" + _B62 + "{16}"),
    ("mapbox-secret-token", r"sk\.eyJ", r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"),
    ("dropbox-token", r"sl\.", _URLSAFE + "{130,}"),
    ("clickhouse-cloud-key", r"4b1d", _B62 + "{38}"),
    ("maxmind-license-key", r"[A-Za-z0-9]{6}_", _B62 + "{29}_mmk"),
    (
        "hubspot-token",
        r"pat-(?:eu|na)[0-9]-",
        _HEX + "{8}-" + _HEX + "{4}-" + _HEX + "{4}-" + _HEX + "{4}-" + _HEX + "{12}",
    ),
    (
        "plaid-token",
        r"access-(?:sandbox|development|production)-",
        _HEX + "{8}-" + _HEX + "{4}-" + _HEX + "{4}-" + _HEX + "{4}-" + _HEX + "{12}",
    ),
    ("sonarqube-token", r"sq[pua]_", _HEX + "{40}"),
    ("salesforce-token", r"00D[0-9A-Za-z]{12}!", "[0-9A-Za-z._]{80,}"),
    # exchanges
    ("gemini-api-key", r"(?:account|master)-", _B62 + "{20}(?![A-Za-z0-9])"),
)

# A prefix this short occurs in ordinary text (``RISK``, ``task-``): the trigger also takes the start of the body, so
# that such text stays on the fast path.
SHORT_PREFIX_TRIGGERS: dict[str, str] = {
    "twilio-api-key": "SK[a-fA-F0-9]{32}",
    "legacy-sk-api-key": "sk-[A-Za-z0-9]{32}",
    "gocardless-token": "live_[A-Za-z0-9_=-]{40}",
    "octopus-deploy-key": "API-[A-Z0-9]{26}",
    "onepassword-secret-key": "A3-[A-Z0-9]{6}-",
    "mailgun-key": "key-[0-9a-z]{32}",
    "pulumi-token": "pul-[a-fA-F0-9]{40}",
    "gemini-api-key": "(?:account|master)-[A-Za-z0-9]{20}",
    "launchdarkly-key": "(?:api|sdk)-[a-fA-F0-9]{8}-",
    "nuget-key": "oy2[a-z0-9]{43}",
    "harness-token": r"pat\.[A-Za-z0-9_-]{22}\.",
    "replicate-token": "r8_[A-Za-z0-9]{30}",
    "huggingface-token": "(?:hf_|api_org_)[A-Za-z0-9]{30}",
    "render-key": "rnd_[A-Za-z0-9]{32}",
    "infracost-key": "ico-[A-Za-z0-9]{32}",
    "vercel-token": "vc[pikar]_[A-Za-z0-9]{24}",
    "tailscale-key": "tskey-[A-Za-z0-9-]{20}",
    "dropbox-token": "sl\\.[A-Za-z0-9_-]{130}",
    "clickhouse-cloud-key": "4b1d[A-Za-z0-9]{38}",
    "maxmind-license-key": "_[A-Za-z0-9]{29}_mmk",
}
