"""Real clients against a running keyless: each mode completes one token exchange and prints the result
as one JSON line on stdout. Run by the `interop` tests of keyless-server with the Python of the virtual
environment that `.ci/run` creates (pip packages `anthropic` and `google-auth`).

  clients.py anthropic    ANTHROPIC_BASE_URL, ANTHROPIC_FEDERATION_RULE_ID, ANTHROPIC_ORGANIZATION_ID,
                          ANTHROPIC_SERVICE_ACCOUNT_ID, ANTHROPIC_IDENTITY_TOKEN_FILE
  clients.py google-auth  KEYLESS_TOKEN_URL, KEYLESS_RULE_ID, KEYLESS_TOKEN_FILE, KEYLESS_SCOPE
  clients.py anthropic-messages  the `anthropic` variables: one `messages.create` through keyless's
                          built-in proxy, with the federation credentials (exchange, then the call)

On failure the client's own exception is printed on stderr and the exit status is 1.
"""

import json
import os
import sys


def anthropic_exchange():
    from anthropic.lib.credentials import IdentityTokenFile, WorkloadIdentityCredentials

    credentials = WorkloadIdentityCredentials(
        identity_token_provider=IdentityTokenFile(os.environ["ANTHROPIC_IDENTITY_TOKEN_FILE"]),
        federation_rule_id=os.environ["ANTHROPIC_FEDERATION_RULE_ID"],
        organization_id=os.environ["ANTHROPIC_ORGANIZATION_ID"],
        service_account_id=os.environ["ANTHROPIC_SERVICE_ACCOUNT_ID"],
    )
    credentials.bind_base_url(os.environ["ANTHROPIC_BASE_URL"])
    token = credentials()
    return {"access_token": token.token, "expires_at": token.expires_at}


def anthropic_messages():
    import anthropic
    from anthropic.lib.credentials import IdentityTokenFile, WorkloadIdentityCredentials

    credentials = WorkloadIdentityCredentials(
        identity_token_provider=IdentityTokenFile(os.environ["ANTHROPIC_IDENTITY_TOKEN_FILE"]),
        federation_rule_id=os.environ["ANTHROPIC_FEDERATION_RULE_ID"],
        organization_id=os.environ["ANTHROPIC_ORGANIZATION_ID"],
        service_account_id=os.environ["ANTHROPIC_SERVICE_ACCOUNT_ID"],
    )
    client = anthropic.Anthropic(credentials=credentials, base_url=os.environ["ANTHROPIC_BASE_URL"], max_retries=0)
    message = client.messages.create(
        model="claude-x", max_tokens=16, messages=[{"role": "user", "content": "hello"}]
    )
    return {"id": message.id, "text": message.content[0].text, "stop_reason": message.stop_reason}


def google_auth_exchange():
    import google.auth.transport.requests
    from google.auth import identity_pool

    info = {
        "type": "external_account",
        "audience": os.environ["KEYLESS_RULE_ID"],
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": os.environ["KEYLESS_TOKEN_URL"],
        "credential_source": {"file": os.environ["KEYLESS_TOKEN_FILE"]},
    }
    credentials = identity_pool.Credentials.from_info(info, scopes=[os.environ["KEYLESS_SCOPE"]])
    credentials.refresh(google.auth.transport.requests.Request())
    return {"access_token": credentials.token, "expiry": credentials.expiry.isoformat() if credentials.expiry else None}


def main():
    modes = {
        "anthropic": anthropic_exchange,
        "anthropic-messages": anthropic_messages,
        "google-auth": google_auth_exchange,
    }
    if len(sys.argv) != 2 or sys.argv[1] not in modes:
        print(f"usage: clients.py {'|'.join(modes)}", file=sys.stderr)
        return 2
    try:
        result = modes[sys.argv[1]]()
    except Exception as error:  # the test shows the client's own message
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
