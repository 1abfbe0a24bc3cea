// Which variable names a leased value may not take by its key's name alone: the same list, for the same
// reasons, as the Python client's app/client/envguard.py (a test compares the two). Key names come from
// whoever writes the secret at Vault; a value is only data until its name makes it behaviour
// (`NODE_OPTIONS=--require ...`, `BASH_ENV`, `LD_PRELOAD`), and GITHUB_ENV hands it to every later step.
// A `NAME=secret/key` line names the variable explicitly, the job author's own choice, and is not checked.

export const DANGEROUS = [
  ["the shell reads it as code or options", [
    "ENV", "BASH_*", "SHELLOPTS", "BASHOPTS", "PS1", "PS2", "PS3", "PS4", "PROMPT_COMMAND", "IFS",
    "CDPATH", "GLOBIGNORE", "ZDOTDIR", "POSIXLY_CORRECT", "HISTFILE", "INPUTRC",
  ]],
  ["it decides which programs and libraries run", [
    "PATH", "LD_*", "DYLD_*", "LIBPATH", "SHLIB_PATH", "GCONV_PATH", "LOCPATH", "NLSPATH", "HOME",
    "SHELL", "TMPDIR", "TERM", "TERMINFO", "TERMINFO_DIRS", "OPENSSL_CONF", "OPENSSL_ENGINES",
    "OPENSSL_MODULES",
  ]],
  ["a language runtime loads code or options from it", [
    "PYTHON*", "NODE_OPTIONS", "NODE_PATH", "NODE_REPL_EXTERNAL_MODULE", "PERL5*", "PERLLIB", "PERL_*",
    "RUBY*", "GEM_*", "BUNDLE_*", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "JAVA_HOME",
    "JAVA_OPTS", "CLASSPATH", "MAVEN_OPTS", "GRADLE_OPTS", "LUA_*", "PHPRC", "PHP_INI_SCAN_DIR",
    "TCLLIBPATH", "GOFLAGS", "GOROOT", "GOPATH", "GOENV", "GOTOOLCHAIN", "RUSTC", "RUSTC_WRAPPER",
    "RUSTFLAGS", "CARGO_BUILD_*", "CARGO_HOME",
  ]],
  ["a tool runs a command or loads configuration from it", [
    "GIT_*", "SSH_ASKPASS", "SSH_AUTH_SOCK", "EDITOR", "VISUAL", "PAGER", "MANPAGER", "LESSOPEN",
    "LESSCLOSE", "BROWSER", "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "KUBECONFIG",
    "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "CURL_HOME", "WGETRC", "NETRC", "XDG_CONFIG_HOME",
    "XDG_DATA_HOME", "XDG_CONFIG_DIRS",
  ]],
  ["it chooses where downloads come from or whom TLS trusts", [
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "FTP_PROXY", "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "NODE_TLS_REJECT_UNAUTHORIZED",
    "AWS_CA_BUNDLE", "AWS_ENDPOINT_URL*", "PIP_*", "UV_*", "NPM_CONFIG_*", "YARN_*", "GOPROXY",
    "GOSUMDB", "GONOSUMDB", "GONOSUMCHECK", "GOINSECURE", "GOPRIVATE", "GONOPROXY",
  ]],
  ["it changes how programs read text and time", ["LANG", "LANGUAGE", "LC_*", "TZ"]],
  ["the CI runner or this client reads it (token endpoints, step files, lease ids)", [
    "CI", "CI_*", "GITHUB_*", "ACTIONS_*", "RUNNER_*", "GITLAB_*", "TRANSOM_*",
  ]],
];

// Why `name` changes how the job's programs run, or null. Case-insensitive, as in the Python client.
export function dangerous(name) {
  const upper = name.toUpperCase();
  for (const [why, names] of DANGEROUS) {
    for (const entry of names) {
      if (entry.endsWith("*") ? upper.startsWith(entry.slice(0, -1)) : upper === entry) return why;
    }
  }
  return null;
}

// Why a value may not take `name` unless a `NAME=secret/key` line names it, or null.
export function refusal(name, environment) {
  return dangerous(name) ?? (Object.hasOwn(environment, name) ? "the job's environment already sets it" : null);
}
