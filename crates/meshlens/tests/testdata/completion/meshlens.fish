# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_meshlens_global_optspecs
    string join \n h/help V/version
end

function __fish_meshlens_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_meshlens_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_meshlens_using_subcommand
    set -l cmd (__fish_meshlens_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c meshlens -n "__fish_meshlens_needs_command" -s h -l help -d 'Print help'
complete -c meshlens -n "__fish_meshlens_needs_command" -s V -l version -d 'Print version'
complete -c meshlens -n "__fish_meshlens_needs_command" -f -a "__reap" -d 'Internal: the watchdog of `meshlens up` (stops its processes if it is killed)'
complete -c meshlens -n "__fish_meshlens_needs_command" -f -a "proxy" -d 'Run the sidecar proxy in front of one workload instance'
complete -c meshlens -n "__fish_meshlens_needs_command" -f -a "control" -d 'Run the control plane on a mesh directory'
complete -c meshlens -n "__fish_meshlens_needs_command" -f -a "up" -d 'Run a mesh directory on this machine: control plane, apps and their sidecar proxies'
complete -c meshlens -n "__fish_meshlens_needs_command" -f -a "demo" -d 'Run the demo shop (optionally with an incident scenario), or export it as a mesh directory'
complete -c meshlens -n "__fish_meshlens_needs_command" -f -a "demo-app" -d 'A configurable demo HTTP service (latencies, failures, faults, calls), as the demo runs it'
complete -c meshlens -n "__fish_meshlens_needs_command" -f -a "demo-load" -d 'The demo\'s traffic generator: a steady request rate over a mix of paths'
complete -c meshlens -n "__fish_meshlens_needs_command" -f -a "stat" -d 'Traffic statistics of namespaces, workloads, instances and services (Linkerd\'s `viz stat`)'
complete -c meshlens -n "__fish_meshlens_needs_command" -f -a "routes" -d 'Per-route statistics of a resource\'s ServiceProfile routes (Linkerd\'s `viz routes`)'
complete -c meshlens -n "__fish_meshlens_needs_command" -f -a "edges" -d 'Which workloads talked to which in the window (Linkerd\'s `viz edges`)'
complete -c meshlens -n "__fish_meshlens_needs_command" -f -a "prometheus-config" -d 'Print a Prometheus configuration that scrapes every proxy of the mesh (for `control --prometheus-url`)'
complete -c meshlens -n "__fish_meshlens_needs_command" -f -a "diagnose" -d 'Find what is wrong with a namespace\'s traffic: ranked findings with evidence (exit 3 with --fail-on)'
complete -c meshlens -n "__fish_meshlens_needs_command" -f -a "diagnostics" -d 'Proxies\' raw metrics and discovery as proxies see it (Linkerd\'s `diagnostics`)'
complete -c meshlens -n "__fish_meshlens_needs_command" -f -a "profile" -d 'Write a ServiceProfile: a commented template, routes from an OpenAPI document or gRPC services, or from live traffic'
complete -c meshlens -n "__fish_meshlens_needs_command" -f -a "logs" -d 'Recent WARN/ERROR events of a resource\'s proxies, per instance: "grep the proxy logs for errors"'
complete -c meshlens -n "__fish_meshlens_needs_command" -f -a "tap" -d 'Live requests of a resource, one line per request event (Linkerd\'s `viz tap`)'
complete -c meshlens -n "__fish_meshlens_needs_command" -f -a "top" -d 'Live traffic of a resource, aggregated by path or route (Linkerd\'s `viz top`)'
complete -c meshlens -n "__fish_meshlens_needs_command" -f -a "check" -d 'Check the mesh\'s health and its configuration against traffic (√ / ‼ / ×), a directory before `up` (--pre), or the drift between two meshes (--compare)'
complete -c meshlens -n "__fish_meshlens_needs_command" -f -a "alerts" -d 'Pending and firing alerts with their evidence (--watch), or the rules for Prometheus (--prometheus-rules)'
complete -c meshlens -n "__fish_meshlens_needs_command" -f -a "dashboard" -d 'Print a one-time login link to the web dashboard and open it in a browser when there is one'
complete -c meshlens -n "__fish_meshlens_needs_command" -f -a "completion" -d 'Print a shell completion script (bash, zsh, fish)'
complete -c meshlens -n "__fish_meshlens_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c meshlens -n "__fish_meshlens_using_subcommand __reap" -s h -l help -d 'Print help'
complete -c meshlens -n "__fish_meshlens_using_subcommand proxy" -l outbound -d 'Where the app\'s outbound calls arrive (HTTP proxy, Host routing, CONNECT). Loopback peers only' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand proxy" -l inbound -d 'Where peer proxies connect; traffic is forwarded to --app [default with --app: 0.0.0.0:4143]' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand proxy" -l admin -d 'Admin listener: /metrics /ready /live /config /endpoints /logs /log-level' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand proxy" -l tap -d 'Tap listener: `GET /tap` streams live requests to the control plane, with the token of its lease' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand proxy" -l tap-token -d 'A bearer token the tap listener accepts besides the control plane\'s, e.g. for a proxy without a control plane. Without either, tap answers 403' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand proxy" -l credential-file -d 'This instance\'s credential for the control plane (a file; `meshlens up` writes one per proxy)' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand proxy" -l proxy-key-file -d 'Instead of --credential-file: the control plane\'s proxy key (a file, e.g. the one `meshlens control` wrote); the proxy mints its own credential for its namespace, workload and instance' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand proxy" -l admin-token-file -d 'The bearer token that PUT /log-level needs (a file); without it, changes are off' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand proxy" -l access-log -d 'Log every HTTP request on stderr, in Linkerd\'s `apache` or `json` format (off by default)' -r -f -a "apache\t''
json\t''"
complete -c meshlens -n "__fish_meshlens_using_subcommand proxy" -l app -d 'The local application that inbound traffic goes to, e.g. 127.0.0.1:8080' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand proxy" -l discovery -d 'A static discovery file (YAML or JSON): services, ports and endpoints' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand proxy" -l control -d 'Control plane URL: the proxy registers under a lease and follows discovery from it (instead of --discovery); the lease also carries the tap token. Registering needs --credential-file or --proxy-key-file' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand proxy" -l workload -d 'Name of the workload this proxy serves' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand proxy" -l namespace -d 'Namespace of the workload; short service names resolve in it' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand proxy" -l instance -d 'Instance name (default <workload>-0)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand proxy" -l upstream -d 'A local listener for one service: SERVICE[:PORT]=HOST:PORT, for clients that ignore HTTP_PROXY (gRPC, raw TCP). Repeatable; port 0 picks a free port (see the start-up line)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand proxy" -l log-level -d 'Log filter, e.g. `info` or `info,meshlens_proxy=debug`; changeable at runtime via PUT /log-level' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand proxy" -l shutdown-grace-secs -d 'How long in-flight requests may take to finish after SIGTERM, in seconds' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand proxy" -l cores -d 'Worker threads. 1 (the default) runs everything on one thread, as a sidecar on one core should; more spreads connections over several cores' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand proxy" -l failfast-timeout-secs -d 'Seconds to wait for a ready endpoint before failing fast (504, then 503)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand proxy" -s h -l help -d 'Print help'
complete -c meshlens -n "__fish_meshlens_using_subcommand control" -l mesh-dir -d 'The mesh directory: mesh.yaml plus ServiceProfile and TrafficSplit files' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand control" -s n -l namespace -d 'The namespace of documents that name none, as kubectl\'s -n [default: the mesh\'s first namespace]' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand control" -l listen -d 'Where the API listens (proxies, CLI, dashboard). Port 0 picks a free port' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand control" -l scrape-interval -d 'How often every registered proxy\'s /metrics is scraped into the metric store (e.g. 5s, 500ms); with --prometheus-url, how often Prometheus scrapes them (query windows must span two intervals)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand control" -l metrics-retention -d 'How long the metric store keeps what it scraped' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand control" -l prometheus-url -d 'Answer `stat`, `routes` and `edges` with PromQL from this Prometheus (http://HOST:PORT[/PATH]), which scrapes the proxies (`meshlens prometheus-config` prints its configuration); the embedded metric store does not run' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand control" -l proxy-key-file -d 'The key proxy credentials are checked with (64 hex digits), e.g. written by `meshlens up`' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand control" -l api-token-file -d 'The token every /api/v1/ request needs (`Authorization: Bearer`)' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand control" -l secrets-dir -d 'Where a new key and token are written (0700) when not given [default: $XDG_STATE_HOME/meshlens/control-PID]' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand control" -l log-level -d 'Log filter, e.g. `info` or `info,meshlens_control=debug`' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand control" -s h -l help -d 'Print help'
complete -c meshlens -n "__fish_meshlens_using_subcommand up" -s f -l file -d 'The mesh directory: mesh.yaml plus ServiceProfile/TrafficSplit *.yaml files' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand up" -s n -l namespace -d 'The namespace of documents that name none, as kubectl\'s -n [default: the mesh\'s first namespace]' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand up" -l control-port -d 'Port of the control plane on 127.0.0.1 [default: 8086 when free, else any free port; 0: any]' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand up" -l control -d 'Use a control plane that is already running instead of starting one' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand up" -l proxy-key-file -d 'With --control: the key that control plane checks proxy credentials with (`meshlens control` says where it wrote it); each proxy gets a credential minted with it' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand up" -l api-token-file -d 'With --control: that control plane\'s API token, written into the session file for the CLI' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand up" -l log-dir -d 'Write each process\'s output to DIR/<name>.log instead of the terminal' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand up" -l stop-grace -d 'Seconds each stage (apps, proxies, control plane) may take to exit after SIGTERM before SIGKILL' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand up" -l ready-timeout -d 'Seconds the control plane and each proxy may take to start listening' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand up" -s h -l help -d 'Print help'
complete -c meshlens -n "__fish_meshlens_using_subcommand demo" -l scenario -d 'The incident to inject (default: none, a healthy shop)' -r -f -a "retry-storm\t'order-service fails ~15% with 503; payment→order is retryable with a generous budget'
timeout-504\t'user-service takes ~7 s on ~5% of GET /users/{id}; its route timeout is 5 s'
stale-split\t'The ml-inference split forgets backend -c; -b fails every 50th request'
bad-headers\t'auth-service sends malformed responses (a bare CR in a header value)'
split-math\t'checkout-service canary split with weights 60 and 50 (sum 110)'
regex-miss\t'order-service routes expect numeric ids; order ids are UUIDs'
slow-success\t'payment-service answers declined charges with 200, ~10× slower'"
complete -c meshlens -n "__fish_meshlens_using_subcommand demo" -l rps -d 'Requests per second the traffic generator sends to frontend' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand demo" -l export -d 'Write the demo\'s mesh directory to DIR and exit' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand demo" -l control-port -d 'Port of the control plane on 127.0.0.1 [default: 8086 when free, else any free port; 0: any]' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand demo" -l control -d 'Use a control plane that is already running instead of starting one' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand demo" -l proxy-key-file -d 'With --control: the key that control plane checks proxy credentials with (`meshlens control` says where it wrote it); each proxy gets a credential minted with it' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand demo" -l api-token-file -d 'With --control: that control plane\'s API token, written into the session file for the CLI' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand demo" -l log-dir -d 'Write each process\'s output to DIR/<name>.log instead of the terminal' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand demo" -l stop-grace -d 'Seconds each stage (apps, proxies, control plane) may take to exit after SIGTERM before SIGKILL' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand demo" -l ready-timeout -d 'Seconds the control plane and each proxy may take to start listening' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand demo" -l force -d 'With --export: write into a directory that already has files'
complete -c meshlens -n "__fish_meshlens_using_subcommand demo" -l show-logs -d 'Show every process\'s output in the terminal (default: only the traffic generator\'s; the rest goes to log files in the state directory, see the start-up lines)'
complete -c meshlens -n "__fish_meshlens_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c meshlens -n "__fish_meshlens_using_subcommand demo-app" -l config -d 'The configuration file (YAML)' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand demo-app" -l config-json -d 'The configuration as inline JSON (or YAML) text' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand demo-app" -l listen -d 'Where to listen [default: 127.0.0.1:$PORT]' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand demo-app" -l check -d 'Only check the configuration (print what it would serve) and exit'
complete -c meshlens -n "__fish_meshlens_using_subcommand demo-app" -s h -l help -d 'Print help'
complete -c meshlens -n "__fish_meshlens_using_subcommand demo-load" -l target -d 'The service to drive, e.g. http://frontend' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand demo-load" -l rps -d 'Requests per second' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand demo-load" -l mix -d 'Weighted requests: "METHOD /path=WEIGHT,…"; {n} is a random number, {uuid} a random UUID' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand demo-load" -l timeout -d 'Client timeout per request' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand demo-load" -l duration -d 'Stop after this long (default: run until stopped)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand demo-load" -l requests -d 'Stop after this many requests (default: run until stopped)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand demo-load" -l report-every -d 'How often to print a summary line' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand demo-load" -s h -l help -d 'Print help'
complete -c meshlens -n "__fish_meshlens_using_subcommand stat" -s n -l namespace -d 'The namespace of the resources' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand stat" -s t -l time-window -d 'The window the numbers cover (at least two scrape intervals)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand stat" -l offset -d 'The same window, this much earlier (e.g. `1h`: a baseline to compare with)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand stat" -l to -d 'Only requests to this resource (TYPE/NAME)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand stat" -l to-namespace -d 'The namespace of --to (default: -n)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand stat" -l from -d 'Only requests from this resource (TYPE/NAME)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand stat" -l from-namespace -d 'The namespace of --from (default: -n)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand stat" -s l -l selector -d 'Only resources whose labels match this selector (Kubernetes syntax: `app=web`, `tier!=db`, `env in (prod,staging)`, `env notin (dev)`, `canary`, `!canary`; commas join requirements)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand stat" -s o -l output -d 'Output format' -r -f -a "table\t''
wide\t''
json\t''"
complete -c meshlens -n "__fish_meshlens_using_subcommand stat" -l control -d 'The control plane\'s URL (default: MESHLENS_CONTROL, else the session of a running `meshlens up` or `meshlens demo`, else http://127.0.0.1:8086)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand stat" -l api-token-file -d 'A file with the control plane\'s API token (default: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand stat" -s A -l all-namespaces -d 'Every namespace'
complete -c meshlens -n "__fish_meshlens_using_subcommand stat" -l unmeshed -d 'Include unmeshed resources: workloads declared without a proxy (no command, none registered), MESHED 0/N. Without it they are listed only when named'
complete -c meshlens -n "__fish_meshlens_using_subcommand stat" -s h -l help -d 'Print help'
complete -c meshlens -n "__fish_meshlens_using_subcommand routes" -s n -l namespace -r
complete -c meshlens -n "__fish_meshlens_using_subcommand routes" -s t -l time-window -r
complete -c meshlens -n "__fish_meshlens_using_subcommand routes" -l offset -d 'The same window, this much earlier (e.g. `1h`: a baseline to compare with)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand routes" -l to -d 'The routes of this destination (TYPE/NAME), as the resource\'s outbound requests saw them' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand routes" -l to-namespace -r
complete -c meshlens -n "__fish_meshlens_using_subcommand routes" -s l -l selector -d 'Only if the resource\'s labels match this selector (Kubernetes syntax, as `stat -l`)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand routes" -s o -l output -r -f -a "table\t''
wide\t''
json\t''"
complete -c meshlens -n "__fish_meshlens_using_subcommand routes" -l control -d 'The control plane\'s URL (default: MESHLENS_CONTROL, else the session of a running `meshlens up` or `meshlens demo`, else http://127.0.0.1:8086)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand routes" -l api-token-file -d 'A file with the control plane\'s API token (default: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand routes" -s h -l help -d 'Print help'
complete -c meshlens -n "__fish_meshlens_using_subcommand edges" -s n -l namespace -d 'The namespace of the resources' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand edges" -s t -l time-window -d 'The window in which traffic counts' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand edges" -l offset -d 'The same window, this much earlier (e.g. `1h`: a baseline to compare with)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand edges" -s o -l output -r -f -a "table\t''
wide\t''
json\t''"
complete -c meshlens -n "__fish_meshlens_using_subcommand edges" -l control -d 'The control plane\'s URL (default: MESHLENS_CONTROL, else the session of a running `meshlens up` or `meshlens demo`, else http://127.0.0.1:8086)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand edges" -l api-token-file -d 'A file with the control plane\'s API token (default: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand edges" -s A -l all-namespaces -d 'Every namespace'
complete -c meshlens -n "__fish_meshlens_using_subcommand edges" -s h -l help -d 'Print help'
complete -c meshlens -n "__fish_meshlens_using_subcommand prometheus-config" -l scrape-interval -d 'How often Prometheus scrapes each proxy (give the control plane the same --scrape-interval)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand prometheus-config" -l refresh-interval -d 'How often Prometheus asks the control plane which proxies there are' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand prometheus-config" -l job-name -d 'The job\'s name: the `job` label of every proxy series (`linkerd-proxy` is the one Linkerd\'s dashboards and alerts select)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand prometheus-config" -l control -d 'The control plane\'s URL (default: MESHLENS_CONTROL, else the session of a running `meshlens up` or `meshlens demo`, else http://127.0.0.1:8086)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand prometheus-config" -l api-token-file -d 'A file with the control plane\'s API token (default: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand prometheus-config" -s h -l help -d 'Print help'
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnose" -s n -l namespace -r
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnose" -s t -l time-window -d 'The window judged' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnose" -s o -l output -d 'table (wide is the same) or json' -r -f -a "table\t''
wide\t''
json\t''"
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnose" -l fail-on -d 'Exit with code 3 when a finding is at least this severe (critical, warning, info)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnose" -l time-budget -d 'Give up after this long (Go-style duration); the tap sample takes a tenth of it (at most 3 s)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnose" -l offset -d 'The baseline latencies and edges are compared with: the same window this long ago (default: the window just before)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnose" -s w -l watch -d 'Re-evaluate every this long (e.g. 10s) and print what changed: new and resolved findings' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnose" -l compare -d 'Compare this mesh\'s configuration with another\'s (a mesh directory, or a control plane\'s URL): the differences are a `config-drift` finding, and each finding about a service that differs names them' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnose" -l compare-token-file -d 'The API token of the --compare control plane' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnose" -l control -d 'The control plane\'s URL (default: MESHLENS_CONTROL, else the session of a running `meshlens up` or `meshlens demo`, else http://127.0.0.1:8086)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnose" -l api-token-file -d 'A file with the control plane\'s API token (default: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnose" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnostics; and not __fish_seen_subcommand_from proxy-metrics endpoints help" -s h -l help -d 'Print help'
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnostics; and not __fish_seen_subcommand_from proxy-metrics endpoints help" -f -a "proxy-metrics" -d 'The raw Prometheus metrics of each proxy of a resource (deploy/NAME, po/NAME, svc/NAME, ns/NAME)'
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnostics; and not __fish_seen_subcommand_from proxy-metrics endpoints help" -f -a "endpoints" -d 'The endpoints discovery resolves authorities to, exactly as a proxy would see them; -o wide adds how each calling proxy\'s load balancer sees them (EWMA latency, in flight, breaker, share of requests)'
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnostics; and not __fish_seen_subcommand_from proxy-metrics endpoints help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnostics; and __fish_seen_subcommand_from proxy-metrics" -s n -l namespace -r
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnostics; and __fish_seen_subcommand_from proxy-metrics" -l control -d 'The control plane\'s URL (default: MESHLENS_CONTROL, else the session of a running `meshlens up` or `meshlens demo`, else http://127.0.0.1:8086)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnostics; and __fish_seen_subcommand_from proxy-metrics" -l api-token-file -d 'A file with the control plane\'s API token (default: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnostics; and __fish_seen_subcommand_from proxy-metrics" -l obfuscate -d 'Replace the values of labels that name hosts, addresses, namespaces and identities by a hash (authority, client_id, server_id, target_addr, dst_service, dst_namespace)'
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnostics; and __fish_seen_subcommand_from proxy-metrics" -s h -l help -d 'Print help'
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnostics; and __fish_seen_subcommand_from endpoints" -s n -l namespace -d 'The namespace of the caller, where short names resolve' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnostics; and __fish_seen_subcommand_from endpoints" -s o -l output -d 'Output format: table, wide (one row per calling proxy: its balancer\'s view of the endpoint) or json' -r -f -a "table\t''
wide\t''
json\t''"
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnostics; and __fish_seen_subcommand_from endpoints" -s t -l time-window -d 'With -o wide: the window of the callers\' request shares' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnostics; and __fish_seen_subcommand_from endpoints" -l control -d 'The control plane\'s URL (default: MESHLENS_CONTROL, else the session of a running `meshlens up` or `meshlens demo`, else http://127.0.0.1:8086)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnostics; and __fish_seen_subcommand_from endpoints" -l api-token-file -d 'A file with the control plane\'s API token (default: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnostics; and __fish_seen_subcommand_from endpoints" -s h -l help -d 'Print help'
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnostics; and __fish_seen_subcommand_from help" -f -a "proxy-metrics" -d 'The raw Prometheus metrics of each proxy of a resource (deploy/NAME, po/NAME, svc/NAME, ns/NAME)'
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnostics; and __fish_seen_subcommand_from help" -f -a "endpoints" -d 'The endpoints discovery resolves authorities to, exactly as a proxy would see them; -o wide adds how each calling proxy\'s load balancer sees them (EWMA latency, in flight, breaker, share of requests)'
complete -c meshlens -n "__fish_meshlens_using_subcommand diagnostics; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c meshlens -n "__fish_meshlens_using_subcommand profile" -l open-api -d 'Routes from an OpenAPI 3 or Swagger 2 document (JSON or YAML); `-` reads standard input' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand profile" -l proto -d 'Routes from the gRPC services of a protobuf file (`POST /pkg.Service/Method`, one per rpc; retryable when its idempotency_level is IDEMPOTENT or NO_SIDE_EFFECTS); `-` reads standard input' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand profile" -l tap -d 'Routes from the inbound requests of a resource (deploy/NAME, po/NAME) seen for --tap-duration' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand profile" -l tap-duration -d 'How long to watch the traffic with --tap' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand profile" -l tap-route-limit -d 'The most routes --tap writes (the busiest are kept)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand profile" -l max-rps -d 'Requests per second the --tap stream may carry' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand profile" -s n -l namespace -d 'The service\'s namespace' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand profile" -l cluster-domain -d 'The cluster domain of the profile\'s name (default: what the control plane reports with --tap, else cluster.local)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand profile" -s o -l output -r -f -a "yaml\t''
json\t''"
complete -c meshlens -n "__fish_meshlens_using_subcommand profile" -l control -d 'The control plane\'s URL (default: MESHLENS_CONTROL, else the session of a running `meshlens up` or `meshlens demo`, else http://127.0.0.1:8086)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand profile" -l api-token-file -d 'A file with the control plane\'s API token (default: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand profile" -l template -d 'A commented template to edit'
complete -c meshlens -n "__fish_meshlens_using_subcommand profile" -s h -l help -d 'Print help'
complete -c meshlens -n "__fish_meshlens_using_subcommand logs" -s n -l namespace -d 'The namespace of the resource' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand logs" -l level -d 'The least severe events to show: warn (WARN and ERROR) or error (ERROR only)' -r -f -a "warn\t''
error\t''"
complete -c meshlens -n "__fish_meshlens_using_subcommand logs" -l since -d 'Only events of this recent period (e.g. 10m, 1h)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand logs" -s o -l output -d 'Output format: table, or json (with -f: one event per line)' -r -f -a "table\t''
json\t''"
complete -c meshlens -n "__fish_meshlens_using_subcommand logs" -l control -d 'The control plane\'s URL (default: MESHLENS_CONTROL, else the session of a running `meshlens up` or `meshlens demo`, else http://127.0.0.1:8086)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand logs" -l api-token-file -d 'A file with the control plane\'s API token (default: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand logs" -s f -l follow -d 'Keep printing new events as they are logged (Ctrl-C stops)'
complete -c meshlens -n "__fish_meshlens_using_subcommand logs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c meshlens -n "__fish_meshlens_using_subcommand tap" -s n -l namespace -d 'The namespace of the resource' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand tap" -l to -d 'Only requests to this resource: deploy/NAME, po/NAME, svc/NAME or ns/NAME' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand tap" -l to-namespace -d 'The namespace of the --to resource (default: --namespace)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand tap" -l method -d 'Only requests with this HTTP method' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand tap" -l path -d 'Only requests whose path starts with this prefix' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand tap" -l authority -d 'Only requests with exactly this :authority' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand tap" -l scheme -d 'Only requests with this scheme: http or https' -r -f -a "http\t''
https\t''"
complete -c meshlens -n "__fish_meshlens_using_subcommand tap" -l max-rps -d 'At most this many requests per second, divided among the resource\'s proxies' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand tap" -l status -d 'Only responses with these HTTP statuses: a code (504), a class (5xx) or a range (500-503), comma-separated' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand tap" -s l -l selector -d 'Only instances whose labels match this selector (Kubernetes syntax, as `stat -l`)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand tap" -s o -l output -d 'Output format: wide (adds the endpoints\' metadata) or json (one event per line)' -r -f -a "wide\t''
json\t''"
complete -c meshlens -n "__fish_meshlens_using_subcommand tap" -l control -d 'The control plane\'s URL (default: MESHLENS_CONTROL, else the session of a running `meshlens up` or `meshlens demo`, else http://127.0.0.1:8086)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand tap" -l api-token-file -d 'A file with the control plane\'s API token (default: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand tap" -l failed -d 'Only failed requests: HTTP 5xx, a failing grpc-status, a reset, or a response the proxy made'
complete -c meshlens -n "__fish_meshlens_using_subcommand tap" -l headers -d 'Capture request and response headers (sensitive ones redacted); -o json only'
complete -c meshlens -n "__fish_meshlens_using_subcommand tap" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c meshlens -n "__fish_meshlens_using_subcommand top" -s n -l namespace -d 'The namespace of the resource' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand top" -l to -d 'Only requests to this resource: deploy/NAME, po/NAME, svc/NAME or ns/NAME' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand top" -l to-namespace -d 'The namespace of the --to resource (default: --namespace)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand top" -l method -d 'Only requests with this HTTP method' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand top" -l path -d 'Only requests whose path starts with this prefix' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand top" -l authority -d 'Only requests with exactly this :authority' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand top" -l scheme -d 'Only requests with this scheme: http or https' -r -f -a "http\t''
https\t''"
complete -c meshlens -n "__fish_meshlens_using_subcommand top" -l max-rps -d 'At most this many requests per second, divided among the resource\'s proxies' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand top" -l status -d 'Only responses with these HTTP statuses: a code (504), a class (5xx) or a range (500-503), comma-separated' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand top" -s l -l selector -d 'Only instances whose labels match this selector (Kubernetes syntax, as `stat -l`)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand top" -l interval -d 'When stdout is not a terminal: print the table this often' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand top" -l control -d 'The control plane\'s URL (default: MESHLENS_CONTROL, else the session of a running `meshlens up` or `meshlens demo`, else http://127.0.0.1:8086)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand top" -l api-token-file -d 'A file with the control plane\'s API token (default: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand top" -l failed -d 'Only failed requests: HTTP 5xx, a failing grpc-status, a reset, or a response the proxy made'
complete -c meshlens -n "__fish_meshlens_using_subcommand top" -l hide-sources -d 'Hide the Source column (rows merge across sources)'
complete -c meshlens -n "__fish_meshlens_using_subcommand top" -l routes -d 'One row per ServiceProfile route instead of per method and path'
complete -c meshlens -n "__fish_meshlens_using_subcommand top" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c meshlens -n "__fish_meshlens_using_subcommand check" -l pre -d 'Check this mesh directory without a control plane: validation (file:line) and the audits that need no traffic. With --compare: the mesh compared' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand check" -l compare -d 'List every difference in services, profiles, routes, timeouts, retry budgets and splits between this mesh and another (a mesh directory, or a control plane\'s URL); exit 1 when they differ' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand check" -l compare-token-file -d 'The API token of the --compare control plane' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand check" -s t -l time-window -d 'The window live traffic is judged over' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand check" -s o -l output -d 'table or json' -r -f -a "table\t''
wide\t''
json\t''"
complete -c meshlens -n "__fish_meshlens_using_subcommand check" -l control -d 'The control plane\'s URL (default: MESHLENS_CONTROL, else the session of a running `meshlens up` or `meshlens demo`, else http://127.0.0.1:8086)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand check" -l api-token-file -d 'A file with the control plane\'s API token (default: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c meshlens -n "__fish_meshlens_using_subcommand alerts" -s o -l output -d 'table, wide (with evidence) or json' -r -f -a "table\t''
wide\t''
json\t''"
complete -c meshlens -n "__fish_meshlens_using_subcommand alerts" -l interval -d 'How often --watch asks' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand alerts" -l control -d 'The control plane\'s URL (default: MESHLENS_CONTROL, else the session of a running `meshlens up` or `meshlens demo`, else http://127.0.0.1:8086)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand alerts" -l api-token-file -d 'A file with the control plane\'s API token (default: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand alerts" -s w -l watch -d 'Keep polling; print the alerts again whenever they change (json: one line per change)'
complete -c meshlens -n "__fish_meshlens_using_subcommand alerts" -l prometheus-rules -d 'Print equivalent Prometheus alerting rules (a rule file) for a Prometheus scraping the proxies (`meshlens prometheus-config`), with the mesh\'s thresholds and `for:` durations'
complete -c meshlens -n "__fish_meshlens_using_subcommand alerts" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c meshlens -n "__fish_meshlens_using_subcommand dashboard" -l control -d 'The control plane\'s URL (default: MESHLENS_CONTROL, else the session of a running `meshlens up` or `meshlens demo`, else http://127.0.0.1:8086)' -r
complete -c meshlens -n "__fish_meshlens_using_subcommand dashboard" -l api-token-file -d 'A file with the control plane\'s API token (default: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)' -r -F
complete -c meshlens -n "__fish_meshlens_using_subcommand dashboard" -l no-open -d 'Only print the link; do not start a browser'
complete -c meshlens -n "__fish_meshlens_using_subcommand dashboard" -s h -l help -d 'Print help'
complete -c meshlens -n "__fish_meshlens_using_subcommand completion" -s h -l help -d 'Print help'
complete -c meshlens -n "__fish_meshlens_using_subcommand help; and not __fish_seen_subcommand_from __reap proxy control up demo demo-app demo-load stat routes edges prometheus-config diagnose diagnostics profile logs tap top check alerts dashboard completion help" -f -a "__reap" -d 'Internal: the watchdog of `meshlens up` (stops its processes if it is killed)'
complete -c meshlens -n "__fish_meshlens_using_subcommand help; and not __fish_seen_subcommand_from __reap proxy control up demo demo-app demo-load stat routes edges prometheus-config diagnose diagnostics profile logs tap top check alerts dashboard completion help" -f -a "proxy" -d 'Run the sidecar proxy in front of one workload instance'
complete -c meshlens -n "__fish_meshlens_using_subcommand help; and not __fish_seen_subcommand_from __reap proxy control up demo demo-app demo-load stat routes edges prometheus-config diagnose diagnostics profile logs tap top check alerts dashboard completion help" -f -a "control" -d 'Run the control plane on a mesh directory'
complete -c meshlens -n "__fish_meshlens_using_subcommand help; and not __fish_seen_subcommand_from __reap proxy control up demo demo-app demo-load stat routes edges prometheus-config diagnose diagnostics profile logs tap top check alerts dashboard completion help" -f -a "up" -d 'Run a mesh directory on this machine: control plane, apps and their sidecar proxies'
complete -c meshlens -n "__fish_meshlens_using_subcommand help; and not __fish_seen_subcommand_from __reap proxy control up demo demo-app demo-load stat routes edges prometheus-config diagnose diagnostics profile logs tap top check alerts dashboard completion help" -f -a "demo" -d 'Run the demo shop (optionally with an incident scenario), or export it as a mesh directory'
complete -c meshlens -n "__fish_meshlens_using_subcommand help; and not __fish_seen_subcommand_from __reap proxy control up demo demo-app demo-load stat routes edges prometheus-config diagnose diagnostics profile logs tap top check alerts dashboard completion help" -f -a "demo-app" -d 'A configurable demo HTTP service (latencies, failures, faults, calls), as the demo runs it'
complete -c meshlens -n "__fish_meshlens_using_subcommand help; and not __fish_seen_subcommand_from __reap proxy control up demo demo-app demo-load stat routes edges prometheus-config diagnose diagnostics profile logs tap top check alerts dashboard completion help" -f -a "demo-load" -d 'The demo\'s traffic generator: a steady request rate over a mix of paths'
complete -c meshlens -n "__fish_meshlens_using_subcommand help; and not __fish_seen_subcommand_from __reap proxy control up demo demo-app demo-load stat routes edges prometheus-config diagnose diagnostics profile logs tap top check alerts dashboard completion help" -f -a "stat" -d 'Traffic statistics of namespaces, workloads, instances and services (Linkerd\'s `viz stat`)'
complete -c meshlens -n "__fish_meshlens_using_subcommand help; and not __fish_seen_subcommand_from __reap proxy control up demo demo-app demo-load stat routes edges prometheus-config diagnose diagnostics profile logs tap top check alerts dashboard completion help" -f -a "routes" -d 'Per-route statistics of a resource\'s ServiceProfile routes (Linkerd\'s `viz routes`)'
complete -c meshlens -n "__fish_meshlens_using_subcommand help; and not __fish_seen_subcommand_from __reap proxy control up demo demo-app demo-load stat routes edges prometheus-config diagnose diagnostics profile logs tap top check alerts dashboard completion help" -f -a "edges" -d 'Which workloads talked to which in the window (Linkerd\'s `viz edges`)'
complete -c meshlens -n "__fish_meshlens_using_subcommand help; and not __fish_seen_subcommand_from __reap proxy control up demo demo-app demo-load stat routes edges prometheus-config diagnose diagnostics profile logs tap top check alerts dashboard completion help" -f -a "prometheus-config" -d 'Print a Prometheus configuration that scrapes every proxy of the mesh (for `control --prometheus-url`)'
complete -c meshlens -n "__fish_meshlens_using_subcommand help; and not __fish_seen_subcommand_from __reap proxy control up demo demo-app demo-load stat routes edges prometheus-config diagnose diagnostics profile logs tap top check alerts dashboard completion help" -f -a "diagnose" -d 'Find what is wrong with a namespace\'s traffic: ranked findings with evidence (exit 3 with --fail-on)'
complete -c meshlens -n "__fish_meshlens_using_subcommand help; and not __fish_seen_subcommand_from __reap proxy control up demo demo-app demo-load stat routes edges prometheus-config diagnose diagnostics profile logs tap top check alerts dashboard completion help" -f -a "diagnostics" -d 'Proxies\' raw metrics and discovery as proxies see it (Linkerd\'s `diagnostics`)'
complete -c meshlens -n "__fish_meshlens_using_subcommand help; and not __fish_seen_subcommand_from __reap proxy control up demo demo-app demo-load stat routes edges prometheus-config diagnose diagnostics profile logs tap top check alerts dashboard completion help" -f -a "profile" -d 'Write a ServiceProfile: a commented template, routes from an OpenAPI document or gRPC services, or from live traffic'
complete -c meshlens -n "__fish_meshlens_using_subcommand help; and not __fish_seen_subcommand_from __reap proxy control up demo demo-app demo-load stat routes edges prometheus-config diagnose diagnostics profile logs tap top check alerts dashboard completion help" -f -a "logs" -d 'Recent WARN/ERROR events of a resource\'s proxies, per instance: "grep the proxy logs for errors"'
complete -c meshlens -n "__fish_meshlens_using_subcommand help; and not __fish_seen_subcommand_from __reap proxy control up demo demo-app demo-load stat routes edges prometheus-config diagnose diagnostics profile logs tap top check alerts dashboard completion help" -f -a "tap" -d 'Live requests of a resource, one line per request event (Linkerd\'s `viz tap`)'
complete -c meshlens -n "__fish_meshlens_using_subcommand help; and not __fish_seen_subcommand_from __reap proxy control up demo demo-app demo-load stat routes edges prometheus-config diagnose diagnostics profile logs tap top check alerts dashboard completion help" -f -a "top" -d 'Live traffic of a resource, aggregated by path or route (Linkerd\'s `viz top`)'
complete -c meshlens -n "__fish_meshlens_using_subcommand help; and not __fish_seen_subcommand_from __reap proxy control up demo demo-app demo-load stat routes edges prometheus-config diagnose diagnostics profile logs tap top check alerts dashboard completion help" -f -a "check" -d 'Check the mesh\'s health and its configuration against traffic (√ / ‼ / ×), a directory before `up` (--pre), or the drift between two meshes (--compare)'
complete -c meshlens -n "__fish_meshlens_using_subcommand help; and not __fish_seen_subcommand_from __reap proxy control up demo demo-app demo-load stat routes edges prometheus-config diagnose diagnostics profile logs tap top check alerts dashboard completion help" -f -a "alerts" -d 'Pending and firing alerts with their evidence (--watch), or the rules for Prometheus (--prometheus-rules)'
complete -c meshlens -n "__fish_meshlens_using_subcommand help; and not __fish_seen_subcommand_from __reap proxy control up demo demo-app demo-load stat routes edges prometheus-config diagnose diagnostics profile logs tap top check alerts dashboard completion help" -f -a "dashboard" -d 'Print a one-time login link to the web dashboard and open it in a browser when there is one'
complete -c meshlens -n "__fish_meshlens_using_subcommand help; and not __fish_seen_subcommand_from __reap proxy control up demo demo-app demo-load stat routes edges prometheus-config diagnose diagnostics profile logs tap top check alerts dashboard completion help" -f -a "completion" -d 'Print a shell completion script (bash, zsh, fish)'
complete -c meshlens -n "__fish_meshlens_using_subcommand help; and not __fish_seen_subcommand_from __reap proxy control up demo demo-app demo-load stat routes edges prometheus-config diagnose diagnostics profile logs tap top check alerts dashboard completion help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c meshlens -n "__fish_meshlens_using_subcommand help; and __fish_seen_subcommand_from diagnostics" -f -a "proxy-metrics" -d 'The raw Prometheus metrics of each proxy of a resource (deploy/NAME, po/NAME, svc/NAME, ns/NAME)'
complete -c meshlens -n "__fish_meshlens_using_subcommand help; and __fish_seen_subcommand_from diagnostics" -f -a "endpoints" -d 'The endpoints discovery resolves authorities to, exactly as a proxy would see them; -o wide adds how each calling proxy\'s load balancer sees them (EWMA latency, in flight, breaker, share of requests)'
