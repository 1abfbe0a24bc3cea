"""Which environment variable names a leased value may take on its own (docs/API.md, "Command line").

Key names come from whoever writes the secret at Vault, who is not necessarily trusted with the job's code.
A value is only data until its name makes it behaviour: ``SHELLOPTS=xtrace`` with ``PS4=$(...)`` runs code
in every bash the job starts. So a name derived from a key (the default naming, with or without
``--env-prefix``) is refused when a program reads it as code, a path to load code or configuration from,
where to connect or whom to trust, or when the job's environment already sets it. ``--map`` names a
variable explicitly and is the job author's own decision, so it is never refused here.

Names compare case-insensitively: Windows ignores case, and several tools read both ``http_proxy`` and
``HTTP_PROXY`` (or ``npm_config_*``).
"""

from __future__ import annotations

from collections.abc import Mapping

# exact name -> why it is dangerous (shown in the refusal)
_EXACT: dict[str, str] = {}
# name prefix -> why
_PREFIXES: dict[str, str] = {}


def _names(why: str, *names: str) -> None:
    for name in names:
        if name.endswith("*"):
            _PREFIXES[name[:-1]] = why
        else:
            _EXACT[name] = why


_names(
    "the shell reads it as code or options",
    "ENV", "BASH_*", "SHELLOPTS", "BASHOPTS", "PS1", "PS2", "PS3", "PS4", "PROMPT_COMMAND", "IFS",
    "CDPATH", "GLOBIGNORE", "ZDOTDIR", "POSIXLY_CORRECT", "HISTFILE", "INPUTRC",
)  # fmt: skip
_names(
    "it decides which programs and libraries run",
    "PATH", "LD_*", "DYLD_*", "LIBPATH", "SHLIB_PATH", "GCONV_PATH", "LOCPATH", "NLSPATH", "HOME",
    "SHELL", "TMPDIR", "TERM", "TERMINFO", "TERMINFO_DIRS", "OPENSSL_CONF", "OPENSSL_ENGINES",
    "OPENSSL_MODULES",
)  # fmt: skip
_names(
    "a language runtime loads code or options from it",
    "PYTHON*", "NODE_OPTIONS", "NODE_PATH", "NODE_REPL_EXTERNAL_MODULE", "PERL5*", "PERLLIB", "PERL_*",
    "RUBY*", "GEM_*", "BUNDLE_*", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "JAVA_HOME",
    "JAVA_OPTS", "CLASSPATH", "MAVEN_OPTS", "GRADLE_OPTS", "LUA_*", "PHPRC", "PHP_INI_SCAN_DIR",
    "TCLLIBPATH", "GOFLAGS", "GOROOT", "GOPATH", "GOENV", "GOTOOLCHAIN", "RUSTC", "RUSTC_WRAPPER",
    "RUSTFLAGS", "CARGO_BUILD_*", "CARGO_HOME",
)  # fmt: skip
_names(
    "a tool runs a command or loads configuration from it",
    "GIT_*", "SSH_ASKPASS", "SSH_AUTH_SOCK", "EDITOR", "VISUAL", "PAGER", "MANPAGER", "LESSOPEN",
    "LESSCLOSE", "BROWSER", "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "KUBECONFIG",
    "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "CURL_HOME", "WGETRC", "NETRC", "XDG_CONFIG_HOME",
    "XDG_DATA_HOME", "XDG_CONFIG_DIRS",
)  # fmt: skip
_names(
    "it chooses where downloads come from or whom TLS trusts",
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "FTP_PROXY", "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "NODE_TLS_REJECT_UNAUTHORIZED",
    "AWS_CA_BUNDLE", "AWS_ENDPOINT_URL*", "PIP_*", "UV_*", "NPM_CONFIG_*", "YARN_*", "GOPROXY",
    "GOSUMDB", "GONOSUMDB", "GONOSUMCHECK", "GOINSECURE", "GOPRIVATE", "GONOPROXY",
)  # fmt: skip
_names(
    "it changes how programs read text and time",
    "LANG", "LANGUAGE", "LC_*", "TZ",
)  # fmt: skip
_names(
    "the CI runner or this client reads it (token endpoints, step files, lease ids)",
    "CI", "CI_*", "GITHUB_*", "ACTIONS_*", "RUNNER_*", "GITLAB_*", "TRANSOM_*",
)  # fmt: skip


def dangerous(name: str) -> str | None:
    """Why ``name`` changes how the job's programs run, or None."""
    upper = name.upper()
    if upper in _EXACT:
        return _EXACT[upper]
    for prefix, why in _PREFIXES.items():
        if upper.startswith(prefix):
            return why
    return None


def refusal(name: str, environ: Mapping[str, str]) -> str | None:
    """Why a value may not take ``name`` unless the job names it with ``--map``, or None."""
    why = dangerous(name)
    if why is not None:
        return why
    if name in environ:
        return "the job's environment already sets it"
    return None
