#compdef meshlens

autoload -U is-at-least

_meshlens() {
    typeset -A opt_args
    typeset -a _arguments_options
    local ret=1

    if is-at-least 5.2; then
        _arguments_options=(-s -S -C)
    else
        _arguments_options=(-s -C)
    fi

    local context curcontext="$curcontext" state line
    _arguments "${_arguments_options[@]}" : \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
":: :_meshlens_commands" \
"*::: :->meshlens" \
&& ret=0
    case $state in
    (meshlens)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:meshlens-command-$line[1]:"
        case $line[1] in
            (__reap)
_arguments "${_arguments_options[@]}" : \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(proxy)
_arguments "${_arguments_options[@]}" : \
'--outbound=[Where the app'\''s outbound calls arrive (HTTP proxy, Host routing, CONNECT). Loopback peers only]:OUTBOUND:_default' \
'--inbound=[Where peer proxies connect; traffic is forwarded to --app \[default with --app\: 0.0.0.0\:4143\]]:INBOUND:_default' \
'--admin=[Admin listener\: /metrics /ready /live /config /endpoints /logs /log-level]:ADMIN:_default' \
'--tap=[Tap listener\: \`GET /tap\` streams live requests to the control plane, with the token of its lease]:TAP:_default' \
'--tap-token=[A bearer token the tap listener accepts besides the control plane'\''s, e.g. for a proxy without a control plane. Without either, tap answers 403]:TAP_TOKEN:_default' \
'--credential-file=[This instance'\''s credential for the control plane (a file; \`meshlens up\` writes one per proxy)]:FILE:_files' \
'(--credential-file)--proxy-key-file=[Instead of --credential-file\: the control plane'\''s proxy key (a file, e.g. the one \`meshlens control\` wrote); the proxy mints its own credential for its namespace, workload and instance]:FILE:_files' \
'--admin-token-file=[The bearer token that PUT /log-level needs (a file); without it, changes are off]:FILE:_files' \
'--access-log=[Log every HTTP request on stderr, in Linkerd'\''s \`apache\` or \`json\` format (off by default)]:ACCESS_LOG:(apache json)' \
'--app=[The local application that inbound traffic goes to, e.g. 127.0.0.1\:8080]:APP:_default' \
'--discovery=[A static discovery file (YAML or JSON)\: services, ports and endpoints]:DISCOVERY:_files' \
'--control=[Control plane URL\: the proxy registers under a lease and follows discovery from it (instead of --discovery); the lease also carries the tap token. Registering needs --credential-file or --proxy-key-file]:CONTROL:_default' \
'--workload=[Name of the workload this proxy serves]:WORKLOAD:_default' \
'--namespace=[Namespace of the workload; short service names resolve in it]:NAMESPACE:_default' \
'--instance=[Instance name (default <workload>-0)]:INSTANCE:_default' \
'*--upstream=[A local listener for one service\: SERVICE\[\:PORT\]=HOST\:PORT, for clients that ignore HTTP_PROXY (gRPC, raw TCP). Repeatable; port 0 picks a free port (see the start-up line)]:UPSTREAMS:_default' \
'--log-level=[Log filter, e.g. \`info\` or \`info,meshlens_proxy=debug\`; changeable at runtime via PUT /log-level]:LOG_LEVEL:_default' \
'--shutdown-grace-secs=[How long in-flight requests may take to finish after SIGTERM, in seconds]:SHUTDOWN_GRACE_SECS:_default' \
'--cores=[Worker threads. 1 (the default) runs everything on one thread, as a sidecar on one core should; more spreads connections over several cores]:CORES:_default' \
'--failfast-timeout-secs=[Seconds to wait for a ready endpoint before failing fast (504, then 503)]:FAILFAST_TIMEOUT_SECS:_default' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(control)
_arguments "${_arguments_options[@]}" : \
'--mesh-dir=[The mesh directory\: mesh.yaml plus ServiceProfile and TrafficSplit files]:MESH_DIR:_files' \
'-n+[The namespace of documents that name none, as kubectl'\''s -n \[default\: the mesh'\''s first namespace\]]:NAMESPACE:_default' \
'--namespace=[The namespace of documents that name none, as kubectl'\''s -n \[default\: the mesh'\''s first namespace\]]:NAMESPACE:_default' \
'--listen=[Where the API listens (proxies, CLI, dashboard). Port 0 picks a free port]:LISTEN:_default' \
'--scrape-interval=[How often every registered proxy'\''s /metrics is scraped into the metric store (e.g. 5s, 500ms); with --prometheus-url, how often Prometheus scrapes them (query windows must span two intervals)]:SCRAPE_INTERVAL:_default' \
'--metrics-retention=[How long the metric store keeps what it scraped]:METRICS_RETENTION:_default' \
'--prometheus-url=[Answer \`stat\`, \`routes\` and \`edges\` with PromQL from this Prometheus (http\://HOST\:PORT\[/PATH\]), which scrapes the proxies (\`meshlens prometheus-config\` prints its configuration); the embedded metric store does not run]:URL:_default' \
'--proxy-key-file=[The key proxy credentials are checked with (64 hex digits), e.g. written by \`meshlens up\`]:FILE:_files' \
'--api-token-file=[The token every /api/v1/ request needs (\`Authorization\: Bearer\`)]:FILE:_files' \
'--secrets-dir=[Where a new key and token are written (0700) when not given \[default\: \$XDG_STATE_HOME/meshlens/control-PID\]]:DIR:_files' \
'--log-level=[Log filter, e.g. \`info\` or \`info,meshlens_control=debug\`]:LOG_LEVEL:_default' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(up)
_arguments "${_arguments_options[@]}" : \
'-f+[The mesh directory\: mesh.yaml plus ServiceProfile/TrafficSplit *.yaml files]:DIR:_files' \
'--file=[The mesh directory\: mesh.yaml plus ServiceProfile/TrafficSplit *.yaml files]:DIR:_files' \
'-n+[The namespace of documents that name none, as kubectl'\''s -n \[default\: the mesh'\''s first namespace\]]:NAMESPACE:_default' \
'--namespace=[The namespace of documents that name none, as kubectl'\''s -n \[default\: the mesh'\''s first namespace\]]:NAMESPACE:_default' \
'(--control)--control-port=[Port of the control plane on 127.0.0.1 \[default\: 8086 when free, else any free port; 0\: any\]]:PORT:_default' \
'--control=[Use a control plane that is already running instead of starting one]:URL:_default' \
'--proxy-key-file=[With --control\: the key that control plane checks proxy credentials with (\`meshlens control\` says where it wrote it); each proxy gets a credential minted with it]:FILE:_files' \
'--api-token-file=[With --control\: that control plane'\''s API token, written into the session file for the CLI]:FILE:_files' \
'--log-dir=[Write each process'\''s output to DIR/<name>.log instead of the terminal]:DIR:_files' \
'--stop-grace=[Seconds each stage (apps, proxies, control plane) may take to exit after SIGTERM before SIGKILL]:SECS:_default' \
'--ready-timeout=[Seconds the control plane and each proxy may take to start listening]:SECS:_default' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(demo)
_arguments "${_arguments_options[@]}" : \
'--scenario=[The incident to inject (default\: none, a healthy shop)]:SCENARIO:((retry-storm\:"order-service fails ~15% with 503; payment→order is retryable with a generous budget"
timeout-504\:"user-service takes ~7 s on ~5% of GET /users/{id}; its route timeout is 5 s"
stale-split\:"The ml-inference split forgets backend -c; -b fails every 50th request"
bad-headers\:"auth-service sends malformed responses (a bare CR in a header value)"
split-math\:"checkout-service canary split with weights 60 and 50 (sum 110)"
regex-miss\:"order-service routes expect numeric ids; order ids are UUIDs"
slow-success\:"payment-service answers declined charges with 200, ~10× slower"))' \
'--rps=[Requests per second the traffic generator sends to frontend]:RPS:_default' \
'--export=[Write the demo'\''s mesh directory to DIR and exit]:DIR:_files' \
'(--control)--control-port=[Port of the control plane on 127.0.0.1 \[default\: 8086 when free, else any free port; 0\: any\]]:PORT:_default' \
'--control=[Use a control plane that is already running instead of starting one]:URL:_default' \
'--proxy-key-file=[With --control\: the key that control plane checks proxy credentials with (\`meshlens control\` says where it wrote it); each proxy gets a credential minted with it]:FILE:_files' \
'--api-token-file=[With --control\: that control plane'\''s API token, written into the session file for the CLI]:FILE:_files' \
'--log-dir=[Write each process'\''s output to DIR/<name>.log instead of the terminal]:DIR:_files' \
'--stop-grace=[Seconds each stage (apps, proxies, control plane) may take to exit after SIGTERM before SIGKILL]:SECS:_default' \
'--ready-timeout=[Seconds the control plane and each proxy may take to start listening]:SECS:_default' \
'--force[With --export\: write into a directory that already has files]' \
'(--log-dir)--show-logs[Show every process'\''s output in the terminal (default\: only the traffic generator'\''s; the rest goes to log files in the state directory, see the start-up lines)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
&& ret=0
;;
(demo-app)
_arguments "${_arguments_options[@]}" : \
'(--config-json)--config=[The configuration file (YAML)]:FILE:_files' \
'--config-json=[The configuration as inline JSON (or YAML) text]:TEXT:_default' \
'--listen=[Where to listen \[default\: 127.0.0.1\:\$PORT\]]:ADDR:_default' \
'--check[Only check the configuration (print what it would serve) and exit]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(demo-load)
_arguments "${_arguments_options[@]}" : \
'--target=[The service to drive, e.g. http\://frontend]:URL:_default' \
'--rps=[Requests per second]:RPS:_default' \
'--mix=[Weighted requests\: "METHOD /path=WEIGHT,…"; {n} is a random number, {uuid} a random UUID]:MIX:_default' \
'--timeout=[Client timeout per request]:TIMEOUT:_default' \
'--duration=[Stop after this long (default\: run until stopped)]:DURATION:_default' \
'--requests=[Stop after this many requests (default\: run until stopped)]:REQUESTS:_default' \
'--report-every=[How often to print a summary line]:REPORT_EVERY:_default' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(stat)
_arguments "${_arguments_options[@]}" : \
'-n+[The namespace of the resources]:NAMESPACE:_default' \
'--namespace=[The namespace of the resources]:NAMESPACE:_default' \
'-t+[The window the numbers cover (at least two scrape intervals)]:TIME_WINDOW:_default' \
'--time-window=[The window the numbers cover (at least two scrape intervals)]:TIME_WINDOW:_default' \
'--offset=[The same window, this much earlier (e.g. \`1h\`\: a baseline to compare with)]:DURATION:_default' \
'(--from)--to=[Only requests to this resource (TYPE/NAME)]:TO:_default' \
'--to-namespace=[The namespace of --to (default\: -n)]:TO_NAMESPACE:_default' \
'--from=[Only requests from this resource (TYPE/NAME)]:FROM:_default' \
'--from-namespace=[The namespace of --from (default\: -n)]:FROM_NAMESPACE:_default' \
'-l+[Only resources whose labels match this selector (Kubernetes syntax\: \`app=web\`, \`tier!=db\`, \`env in (prod,staging)\`, \`env notin (dev)\`, \`canary\`, \`!canary\`; commas join requirements)]:SELECTOR:_default' \
'--selector=[Only resources whose labels match this selector (Kubernetes syntax\: \`app=web\`, \`tier!=db\`, \`env in (prod,staging)\`, \`env notin (dev)\`, \`canary\`, \`!canary\`; commas join requirements)]:SELECTOR:_default' \
'-o+[Output format]:OUTPUT:(table wide json)' \
'--output=[Output format]:OUTPUT:(table wide json)' \
'--control=[The control plane'\''s URL (default\: MESHLENS_CONTROL, else the session of a running \`meshlens up\` or \`meshlens demo\`, else http\://127.0.0.1\:8086)]:URL:_default' \
'--api-token-file=[A file with the control plane'\''s API token (default\: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)]:FILE:_files' \
'-A[Every namespace]' \
'--all-namespaces[Every namespace]' \
'--unmeshed[Include unmeshed resources\: workloads declared without a proxy (no command, none registered), MESHED 0/N. Without it they are listed only when named]' \
'-h[Print help]' \
'--help[Print help]' \
'*::resources -- TYPE, TYPE/NAME, or TYPE NAME…:_default' \
&& ret=0
;;
(routes)
_arguments "${_arguments_options[@]}" : \
'-n+[]:NAMESPACE:_default' \
'--namespace=[]:NAMESPACE:_default' \
'-t+[]:TIME_WINDOW:_default' \
'--time-window=[]:TIME_WINDOW:_default' \
'--offset=[The same window, this much earlier (e.g. \`1h\`\: a baseline to compare with)]:DURATION:_default' \
'--to=[The routes of this destination (TYPE/NAME), as the resource'\''s outbound requests saw them]:TO:_default' \
'--to-namespace=[]:TO_NAMESPACE:_default' \
'-l+[Only if the resource'\''s labels match this selector (Kubernetes syntax, as \`stat -l\`)]:SELECTOR:_default' \
'--selector=[Only if the resource'\''s labels match this selector (Kubernetes syntax, as \`stat -l\`)]:SELECTOR:_default' \
'-o+[]:OUTPUT:(table wide json)' \
'--output=[]:OUTPUT:(table wide json)' \
'--control=[The control plane'\''s URL (default\: MESHLENS_CONTROL, else the session of a running \`meshlens up\` or \`meshlens demo\`, else http\://127.0.0.1\:8086)]:URL:_default' \
'--api-token-file=[A file with the control plane'\''s API token (default\: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)]:FILE:_files' \
'-h[Print help]' \
'--help[Print help]' \
'*::resource -- TYPE/NAME or TYPE NAME (deploy, po or svc):_default' \
&& ret=0
;;
(edges)
_arguments "${_arguments_options[@]}" : \
'-n+[The namespace of the resources]:NAMESPACE:_default' \
'--namespace=[The namespace of the resources]:NAMESPACE:_default' \
'-t+[The window in which traffic counts]:TIME_WINDOW:_default' \
'--time-window=[The window in which traffic counts]:TIME_WINDOW:_default' \
'--offset=[The same window, this much earlier (e.g. \`1h\`\: a baseline to compare with)]:DURATION:_default' \
'-o+[]:OUTPUT:(table wide json)' \
'--output=[]:OUTPUT:(table wide json)' \
'--control=[The control plane'\''s URL (default\: MESHLENS_CONTROL, else the session of a running \`meshlens up\` or \`meshlens demo\`, else http\://127.0.0.1\:8086)]:URL:_default' \
'--api-token-file=[A file with the control plane'\''s API token (default\: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)]:FILE:_files' \
'-A[Every namespace]' \
'--all-namespaces[Every namespace]' \
'-h[Print help]' \
'--help[Print help]' \
':resource -- deploy or po, or deploy/NAME or po/NAME for the edges from or to one resource:_default' \
&& ret=0
;;
(prometheus-config)
_arguments "${_arguments_options[@]}" : \
'--scrape-interval=[How often Prometheus scrapes each proxy (give the control plane the same --scrape-interval)]:SCRAPE_INTERVAL:_default' \
'--refresh-interval=[How often Prometheus asks the control plane which proxies there are]:REFRESH_INTERVAL:_default' \
'--job-name=[The job'\''s name\: the \`job\` label of every proxy series (\`linkerd-proxy\` is the one Linkerd'\''s dashboards and alerts select)]:JOB_NAME:_default' \
'--control=[The control plane'\''s URL (default\: MESHLENS_CONTROL, else the session of a running \`meshlens up\` or \`meshlens demo\`, else http\://127.0.0.1\:8086)]:URL:_default' \
'--api-token-file=[A file with the control plane'\''s API token (default\: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)]:FILE:_files' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(diagnose)
_arguments "${_arguments_options[@]}" : \
'-n+[]:NAMESPACE:_default' \
'--namespace=[]:NAMESPACE:_default' \
'-t+[The window judged]:TIME_WINDOW:_default' \
'--time-window=[The window judged]:TIME_WINDOW:_default' \
'-o+[table (wide is the same) or json]:OUTPUT:(table wide json)' \
'--output=[table (wide is the same) or json]:OUTPUT:(table wide json)' \
'--fail-on=[Exit with code 3 when a finding is at least this severe (critical, warning, info)]:SEVERITY:_default' \
'--time-budget=[Give up after this long (Go-style duration); the tap sample takes a tenth of it (at most 3 s)]:TIME_BUDGET:_default' \
'--offset=[The baseline latencies and edges are compared with\: the same window this long ago (default\: the window just before)]:DURATION:_default' \
'-w+[Re-evaluate every this long (e.g. 10s) and print what changed\: new and resolved findings]:DURATION:_default' \
'--watch=[Re-evaluate every this long (e.g. 10s) and print what changed\: new and resolved findings]:DURATION:_default' \
'--compare=[Compare this mesh'\''s configuration with another'\''s (a mesh directory, or a control plane'\''s URL)\: the differences are a \`config-drift\` finding, and each finding about a service that differs names them]:DIR_OR_URL:_default' \
'--compare-token-file=[The API token of the --compare control plane]:FILE:_files' \
'--control=[The control plane'\''s URL (default\: MESHLENS_CONTROL, else the session of a running \`meshlens up\` or \`meshlens demo\`, else http\://127.0.0.1\:8086)]:URL:_default' \
'--api-token-file=[A file with the control plane'\''s API token (default\: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)]:FILE:_files' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
&& ret=0
;;
(diagnostics)
_arguments "${_arguments_options[@]}" : \
'-h[Print help]' \
'--help[Print help]' \
":: :_meshlens__subcmd__diagnostics_commands" \
"*::: :->diagnostics" \
&& ret=0

    case $state in
    (diagnostics)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:meshlens-diagnostics-command-$line[1]:"
        case $line[1] in
            (proxy-metrics)
_arguments "${_arguments_options[@]}" : \
'-n+[]:NAMESPACE:_default' \
'--namespace=[]:NAMESPACE:_default' \
'--control=[The control plane'\''s URL (default\: MESHLENS_CONTROL, else the session of a running \`meshlens up\` or \`meshlens demo\`, else http\://127.0.0.1\:8086)]:URL:_default' \
'--api-token-file=[A file with the control plane'\''s API token (default\: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)]:FILE:_files' \
'--obfuscate[Replace the values of labels that name hosts, addresses, namespaces and identities by a hash (authority, client_id, server_id, target_addr, dst_service, dst_namespace)]' \
'-h[Print help]' \
'--help[Print help]' \
'*::resource -- TYPE/NAME or TYPE NAME:_default' \
&& ret=0
;;
(endpoints)
_arguments "${_arguments_options[@]}" : \
'-n+[The namespace of the caller, where short names resolve]:NAMESPACE:_default' \
'--namespace=[The namespace of the caller, where short names resolve]:NAMESPACE:_default' \
'-o+[Output format\: table, wide (one row per calling proxy\: its balancer'\''s view of the endpoint) or json]:OUTPUT:(table wide json)' \
'--output=[Output format\: table, wide (one row per calling proxy\: its balancer'\''s view of the endpoint) or json]:OUTPUT:(table wide json)' \
'-t+[With -o wide\: the window of the callers'\'' request shares]:DURATION:_default' \
'--time-window=[With -o wide\: the window of the callers'\'' request shares]:DURATION:_default' \
'--control=[The control plane'\''s URL (default\: MESHLENS_CONTROL, else the session of a running \`meshlens up\` or \`meshlens demo\`, else http\://127.0.0.1\:8086)]:URL:_default' \
'--api-token-file=[A file with the control plane'\''s API token (default\: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)]:FILE:_files' \
'-h[Print help]' \
'--help[Print help]' \
'*::authorities -- Authorities as an app would call them\: `web`, `web.prod`, `web.prod.svc.cluster.local\:80`:_default' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_meshlens__subcmd__diagnostics__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:meshlens-diagnostics-help-command-$line[1]:"
        case $line[1] in
            (proxy-metrics)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(endpoints)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
;;
(profile)
_arguments "${_arguments_options[@]}" : \
'--open-api=[Routes from an OpenAPI 3 or Swagger 2 document (JSON or YAML); \`-\` reads standard input]:FILE:_files' \
'--proto=[Routes from the gRPC services of a protobuf file (\`POST /pkg.Service/Method\`, one per rpc; retryable when its idempotency_level is IDEMPOTENT or NO_SIDE_EFFECTS); \`-\` reads standard input]:FILE:_files' \
'--tap=[Routes from the inbound requests of a resource (deploy/NAME, po/NAME) seen for --tap-duration]:RESOURCE:_default' \
'--tap-duration=[How long to watch the traffic with --tap]:DURATION:_default' \
'--tap-route-limit=[The most routes --tap writes (the busiest are kept)]:N:_default' \
'--max-rps=[Requests per second the --tap stream may carry]:RPS:_default' \
'-n+[The service'\''s namespace]:NAMESPACE:_default' \
'--namespace=[The service'\''s namespace]:NAMESPACE:_default' \
'--cluster-domain=[The cluster domain of the profile'\''s name (default\: what the control plane reports with --tap, else cluster.local)]:DOMAIN:_default' \
'-o+[]:OUTPUT:(yaml json)' \
'--output=[]:OUTPUT:(yaml json)' \
'--control=[The control plane'\''s URL (default\: MESHLENS_CONTROL, else the session of a running \`meshlens up\` or \`meshlens demo\`, else http\://127.0.0.1\:8086)]:URL:_default' \
'--api-token-file=[A file with the control plane'\''s API token (default\: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)]:FILE:_files' \
'--template[A commented template to edit]' \
'-h[Print help]' \
'--help[Print help]' \
':service -- The service the profile is for:_default' \
&& ret=0
;;
(logs)
_arguments "${_arguments_options[@]}" : \
'-n+[The namespace of the resource]:NAMESPACE:_default' \
'--namespace=[The namespace of the resource]:NAMESPACE:_default' \
'--level=[The least severe events to show\: warn (WARN and ERROR) or error (ERROR only)]:LEVEL:(warn error)' \
'--since=[Only events of this recent period (e.g. 10m, 1h)]:DURATION:_default' \
'-o+[Output format\: table, or json (with -f\: one event per line)]:OUTPUT:(table json)' \
'--output=[Output format\: table, or json (with -f\: one event per line)]:OUTPUT:(table json)' \
'--control=[The control plane'\''s URL (default\: MESHLENS_CONTROL, else the session of a running \`meshlens up\` or \`meshlens demo\`, else http\://127.0.0.1\:8086)]:URL:_default' \
'--api-token-file=[A file with the control plane'\''s API token (default\: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)]:FILE:_files' \
'-f[Keep printing new events as they are logged (Ctrl-C stops)]' \
'--follow[Keep printing new events as they are logged (Ctrl-C stops)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'*::resource -- deploy/NAME, po/NAME, svc/NAME or ns/NAME (or TYPE NAME); `control` for the control plane'\''s own events:_default' \
&& ret=0
;;
(tap)
_arguments "${_arguments_options[@]}" : \
'-n+[The namespace of the resource]:NAMESPACE:_default' \
'--namespace=[The namespace of the resource]:NAMESPACE:_default' \
'--to=[Only requests to this resource\: deploy/NAME, po/NAME, svc/NAME or ns/NAME]:RESOURCE:_default' \
'--to-namespace=[The namespace of the --to resource (default\: --namespace)]:NAMESPACE:_default' \
'--method=[Only requests with this HTTP method]:METHOD:_default' \
'--path=[Only requests whose path starts with this prefix]:PATH:_default' \
'--authority=[Only requests with exactly this \:authority]:AUTHORITY:_default' \
'--scheme=[Only requests with this scheme\: http or https]:SCHEME:(http https)' \
'--max-rps=[At most this many requests per second, divided among the resource'\''s proxies]:MAX_RPS:_default' \
'--status=[Only responses with these HTTP statuses\: a code (504), a class (5xx) or a range (500-503), comma-separated]:STATUS:_default' \
'-l+[Only instances whose labels match this selector (Kubernetes syntax, as \`stat -l\`)]:SELECTOR:_default' \
'--selector=[Only instances whose labels match this selector (Kubernetes syntax, as \`stat -l\`)]:SELECTOR:_default' \
'-o+[Output format\: wide (adds the endpoints'\'' metadata) or json (one event per line)]:OUTPUT:(wide json)' \
'--output=[Output format\: wide (adds the endpoints'\'' metadata) or json (one event per line)]:OUTPUT:(wide json)' \
'--control=[The control plane'\''s URL (default\: MESHLENS_CONTROL, else the session of a running \`meshlens up\` or \`meshlens demo\`, else http\://127.0.0.1\:8086)]:URL:_default' \
'--api-token-file=[A file with the control plane'\''s API token (default\: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)]:FILE:_files' \
'--failed[Only failed requests\: HTTP 5xx, a failing grpc-status, a reset, or a response the proxy made]' \
'--headers[Capture request and response headers (sensitive ones redacted); -o json only]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'*::resource -- TYPE/NAME or TYPE NAME\: deploy, po or ns; `deploy` or `po` alone taps the whole namespace:_default' \
&& ret=0
;;
(top)
_arguments "${_arguments_options[@]}" : \
'-n+[The namespace of the resource]:NAMESPACE:_default' \
'--namespace=[The namespace of the resource]:NAMESPACE:_default' \
'--to=[Only requests to this resource\: deploy/NAME, po/NAME, svc/NAME or ns/NAME]:RESOURCE:_default' \
'--to-namespace=[The namespace of the --to resource (default\: --namespace)]:NAMESPACE:_default' \
'--method=[Only requests with this HTTP method]:METHOD:_default' \
'--path=[Only requests whose path starts with this prefix]:PATH:_default' \
'--authority=[Only requests with exactly this \:authority]:AUTHORITY:_default' \
'--scheme=[Only requests with this scheme\: http or https]:SCHEME:(http https)' \
'--max-rps=[At most this many requests per second, divided among the resource'\''s proxies]:MAX_RPS:_default' \
'--status=[Only responses with these HTTP statuses\: a code (504), a class (5xx) or a range (500-503), comma-separated]:STATUS:_default' \
'-l+[Only instances whose labels match this selector (Kubernetes syntax, as \`stat -l\`)]:SELECTOR:_default' \
'--selector=[Only instances whose labels match this selector (Kubernetes syntax, as \`stat -l\`)]:SELECTOR:_default' \
'--interval=[When stdout is not a terminal\: print the table this often]:INTERVAL:_default' \
'--control=[The control plane'\''s URL (default\: MESHLENS_CONTROL, else the session of a running \`meshlens up\` or \`meshlens demo\`, else http\://127.0.0.1\:8086)]:URL:_default' \
'--api-token-file=[A file with the control plane'\''s API token (default\: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)]:FILE:_files' \
'--failed[Only failed requests\: HTTP 5xx, a failing grpc-status, a reset, or a response the proxy made]' \
'--hide-sources[Hide the Source column (rows merge across sources)]' \
'--routes[One row per ServiceProfile route instead of per method and path]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'*::resource -- TYPE/NAME or TYPE NAME\: deploy, po or ns; `deploy` or `po` alone taps the whole namespace:_default' \
&& ret=0
;;
(check)
_arguments "${_arguments_options[@]}" : \
'--pre=[Check this mesh directory without a control plane\: validation (file\:line) and the audits that need no traffic. With --compare\: the mesh compared]:DIR:_files' \
'--compare=[List every difference in services, profiles, routes, timeouts, retry budgets and splits between this mesh and another (a mesh directory, or a control plane'\''s URL); exit 1 when they differ]:DIR_OR_URL:_default' \
'--compare-token-file=[The API token of the --compare control plane]:FILE:_files' \
'-t+[The window live traffic is judged over]:TIME_WINDOW:_default' \
'--time-window=[The window live traffic is judged over]:TIME_WINDOW:_default' \
'-o+[table or json]:OUTPUT:(table wide json)' \
'--output=[table or json]:OUTPUT:(table wide json)' \
'--control=[The control plane'\''s URL (default\: MESHLENS_CONTROL, else the session of a running \`meshlens up\` or \`meshlens demo\`, else http\://127.0.0.1\:8086)]:URL:_default' \
'--api-token-file=[A file with the control plane'\''s API token (default\: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)]:FILE:_files' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
&& ret=0
;;
(alerts)
_arguments "${_arguments_options[@]}" : \
'-o+[table, wide (with evidence) or json]:OUTPUT:(table wide json)' \
'--output=[table, wide (with evidence) or json]:OUTPUT:(table wide json)' \
'--interval=[How often --watch asks]:INTERVAL:_default' \
'--control=[The control plane'\''s URL (default\: MESHLENS_CONTROL, else the session of a running \`meshlens up\` or \`meshlens demo\`, else http\://127.0.0.1\:8086)]:URL:_default' \
'--api-token-file=[A file with the control plane'\''s API token (default\: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)]:FILE:_files' \
'(--prometheus-rules)-w[Keep polling; print the alerts again whenever they change (json\: one line per change)]' \
'(--prometheus-rules)--watch[Keep polling; print the alerts again whenever they change (json\: one line per change)]' \
'--prometheus-rules[Print equivalent Prometheus alerting rules (a rule file) for a Prometheus scraping the proxies (\`meshlens prometheus-config\`), with the mesh'\''s thresholds and \`for\:\` durations]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
&& ret=0
;;
(dashboard)
_arguments "${_arguments_options[@]}" : \
'--control=[The control plane'\''s URL (default\: MESHLENS_CONTROL, else the session of a running \`meshlens up\` or \`meshlens demo\`, else http\://127.0.0.1\:8086)]:URL:_default' \
'--api-token-file=[A file with the control plane'\''s API token (default\: MESHLENS_API_TOKEN_FILE, else the token in the session file of that control plane)]:FILE:_files' \
'--no-open[Only print the link; do not start a browser]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(completion)
_arguments "${_arguments_options[@]}" : \
'-h[Print help]' \
'--help[Print help]' \
':shell -- The shell:(bash zsh fish)' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_meshlens__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:meshlens-help-command-$line[1]:"
        case $line[1] in
            (__reap)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(proxy)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(control)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(up)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(demo)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(demo-app)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(demo-load)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(stat)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(routes)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(edges)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(prometheus-config)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(diagnose)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(diagnostics)
_arguments "${_arguments_options[@]}" : \
":: :_meshlens__subcmd__help__subcmd__diagnostics_commands" \
"*::: :->diagnostics" \
&& ret=0

    case $state in
    (diagnostics)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:meshlens-help-diagnostics-command-$line[1]:"
        case $line[1] in
            (proxy-metrics)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(endpoints)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(profile)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(logs)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(tap)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(top)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(check)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(alerts)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(dashboard)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(completion)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
}

(( $+functions[_meshlens_commands] )) ||
_meshlens_commands() {
    local commands; commands=(
'__reap:Internal\: the watchdog of \`meshlens up\` (stops its processes if it is killed)' \
'proxy:Run the sidecar proxy in front of one workload instance' \
'control:Run the control plane on a mesh directory' \
'up:Run a mesh directory on this machine\: control plane, apps and their sidecar proxies' \
'demo:Run the demo shop (optionally with an incident scenario), or export it as a mesh directory' \
'demo-app:A configurable demo HTTP service (latencies, failures, faults, calls), as the demo runs it' \
'demo-load:The demo'\''s traffic generator\: a steady request rate over a mix of paths' \
'stat:Traffic statistics of namespaces, workloads, instances and services (Linkerd'\''s \`viz stat\`)' \
'routes:Per-route statistics of a resource'\''s ServiceProfile routes (Linkerd'\''s \`viz routes\`)' \
'edges:Which workloads talked to which in the window (Linkerd'\''s \`viz edges\`)' \
'prometheus-config:Print a Prometheus configuration that scrapes every proxy of the mesh (for \`control --prometheus-url\`)' \
'diagnose:Find what is wrong with a namespace'\''s traffic\: ranked findings with evidence (exit 3 with --fail-on)' \
'diagnostics:Proxies'\'' raw metrics and discovery as proxies see it (Linkerd'\''s \`diagnostics\`)' \
'profile:Write a ServiceProfile\: a commented template, routes from an OpenAPI document or gRPC services, or from live traffic' \
'logs:Recent WARN/ERROR events of a resource'\''s proxies, per instance\: "grep the proxy logs for errors"' \
'tap:Live requests of a resource, one line per request event (Linkerd'\''s \`viz tap\`)' \
'top:Live traffic of a resource, aggregated by path or route (Linkerd'\''s \`viz top\`)' \
'check:Check the mesh'\''s health and its configuration against traffic (√ / ‼ / ×), a directory before \`up\` (--pre), or the drift between two meshes (--compare)' \
'alerts:Pending and firing alerts with their evidence (--watch), or the rules for Prometheus (--prometheus-rules)' \
'dashboard:Print a one-time login link to the web dashboard and open it in a browser when there is one' \
'completion:Print a shell completion script (bash, zsh, fish)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'meshlens commands' commands "$@"
}
(( $+functions[_meshlens__subcmd____reap_commands] )) ||
_meshlens__subcmd____reap_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens __reap commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__alerts_commands] )) ||
_meshlens__subcmd__alerts_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens alerts commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__check_commands] )) ||
_meshlens__subcmd__check_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens check commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__completion_commands] )) ||
_meshlens__subcmd__completion_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens completion commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__control_commands] )) ||
_meshlens__subcmd__control_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens control commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__dashboard_commands] )) ||
_meshlens__subcmd__dashboard_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens dashboard commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__demo_commands] )) ||
_meshlens__subcmd__demo_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens demo commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__demo-app_commands] )) ||
_meshlens__subcmd__demo-app_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens demo-app commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__demo-load_commands] )) ||
_meshlens__subcmd__demo-load_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens demo-load commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__diagnose_commands] )) ||
_meshlens__subcmd__diagnose_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens diagnose commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__diagnostics_commands] )) ||
_meshlens__subcmd__diagnostics_commands() {
    local commands; commands=(
'proxy-metrics:The raw Prometheus metrics of each proxy of a resource (deploy/NAME, po/NAME, svc/NAME, ns/NAME)' \
'endpoints:The endpoints discovery resolves authorities to, exactly as a proxy would see them; -o wide adds how each calling proxy'\''s load balancer sees them (EWMA latency, in flight, breaker, share of requests)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'meshlens diagnostics commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__diagnostics__subcmd__endpoints_commands] )) ||
_meshlens__subcmd__diagnostics__subcmd__endpoints_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens diagnostics endpoints commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__diagnostics__subcmd__help_commands] )) ||
_meshlens__subcmd__diagnostics__subcmd__help_commands() {
    local commands; commands=(
'proxy-metrics:The raw Prometheus metrics of each proxy of a resource (deploy/NAME, po/NAME, svc/NAME, ns/NAME)' \
'endpoints:The endpoints discovery resolves authorities to, exactly as a proxy would see them; -o wide adds how each calling proxy'\''s load balancer sees them (EWMA latency, in flight, breaker, share of requests)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'meshlens diagnostics help commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__diagnostics__subcmd__help__subcmd__endpoints_commands] )) ||
_meshlens__subcmd__diagnostics__subcmd__help__subcmd__endpoints_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens diagnostics help endpoints commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__diagnostics__subcmd__help__subcmd__help_commands] )) ||
_meshlens__subcmd__diagnostics__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens diagnostics help help commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__diagnostics__subcmd__help__subcmd__proxy-metrics_commands] )) ||
_meshlens__subcmd__diagnostics__subcmd__help__subcmd__proxy-metrics_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens diagnostics help proxy-metrics commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__diagnostics__subcmd__proxy-metrics_commands] )) ||
_meshlens__subcmd__diagnostics__subcmd__proxy-metrics_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens diagnostics proxy-metrics commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__edges_commands] )) ||
_meshlens__subcmd__edges_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens edges commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__help_commands] )) ||
_meshlens__subcmd__help_commands() {
    local commands; commands=(
'__reap:Internal\: the watchdog of \`meshlens up\` (stops its processes if it is killed)' \
'proxy:Run the sidecar proxy in front of one workload instance' \
'control:Run the control plane on a mesh directory' \
'up:Run a mesh directory on this machine\: control plane, apps and their sidecar proxies' \
'demo:Run the demo shop (optionally with an incident scenario), or export it as a mesh directory' \
'demo-app:A configurable demo HTTP service (latencies, failures, faults, calls), as the demo runs it' \
'demo-load:The demo'\''s traffic generator\: a steady request rate over a mix of paths' \
'stat:Traffic statistics of namespaces, workloads, instances and services (Linkerd'\''s \`viz stat\`)' \
'routes:Per-route statistics of a resource'\''s ServiceProfile routes (Linkerd'\''s \`viz routes\`)' \
'edges:Which workloads talked to which in the window (Linkerd'\''s \`viz edges\`)' \
'prometheus-config:Print a Prometheus configuration that scrapes every proxy of the mesh (for \`control --prometheus-url\`)' \
'diagnose:Find what is wrong with a namespace'\''s traffic\: ranked findings with evidence (exit 3 with --fail-on)' \
'diagnostics:Proxies'\'' raw metrics and discovery as proxies see it (Linkerd'\''s \`diagnostics\`)' \
'profile:Write a ServiceProfile\: a commented template, routes from an OpenAPI document or gRPC services, or from live traffic' \
'logs:Recent WARN/ERROR events of a resource'\''s proxies, per instance\: "grep the proxy logs for errors"' \
'tap:Live requests of a resource, one line per request event (Linkerd'\''s \`viz tap\`)' \
'top:Live traffic of a resource, aggregated by path or route (Linkerd'\''s \`viz top\`)' \
'check:Check the mesh'\''s health and its configuration against traffic (√ / ‼ / ×), a directory before \`up\` (--pre), or the drift between two meshes (--compare)' \
'alerts:Pending and firing alerts with their evidence (--watch), or the rules for Prometheus (--prometheus-rules)' \
'dashboard:Print a one-time login link to the web dashboard and open it in a browser when there is one' \
'completion:Print a shell completion script (bash, zsh, fish)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'meshlens help commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__help__subcmd____reap_commands] )) ||
_meshlens__subcmd__help__subcmd____reap_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens help __reap commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__help__subcmd__alerts_commands] )) ||
_meshlens__subcmd__help__subcmd__alerts_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens help alerts commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__help__subcmd__check_commands] )) ||
_meshlens__subcmd__help__subcmd__check_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens help check commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__help__subcmd__completion_commands] )) ||
_meshlens__subcmd__help__subcmd__completion_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens help completion commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__help__subcmd__control_commands] )) ||
_meshlens__subcmd__help__subcmd__control_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens help control commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__help__subcmd__dashboard_commands] )) ||
_meshlens__subcmd__help__subcmd__dashboard_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens help dashboard commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__help__subcmd__demo_commands] )) ||
_meshlens__subcmd__help__subcmd__demo_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens help demo commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__help__subcmd__demo-app_commands] )) ||
_meshlens__subcmd__help__subcmd__demo-app_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens help demo-app commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__help__subcmd__demo-load_commands] )) ||
_meshlens__subcmd__help__subcmd__demo-load_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens help demo-load commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__help__subcmd__diagnose_commands] )) ||
_meshlens__subcmd__help__subcmd__diagnose_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens help diagnose commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__help__subcmd__diagnostics_commands] )) ||
_meshlens__subcmd__help__subcmd__diagnostics_commands() {
    local commands; commands=(
'proxy-metrics:The raw Prometheus metrics of each proxy of a resource (deploy/NAME, po/NAME, svc/NAME, ns/NAME)' \
'endpoints:The endpoints discovery resolves authorities to, exactly as a proxy would see them; -o wide adds how each calling proxy'\''s load balancer sees them (EWMA latency, in flight, breaker, share of requests)' \
    )
    _describe -t commands 'meshlens help diagnostics commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__help__subcmd__diagnostics__subcmd__endpoints_commands] )) ||
_meshlens__subcmd__help__subcmd__diagnostics__subcmd__endpoints_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens help diagnostics endpoints commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__help__subcmd__diagnostics__subcmd__proxy-metrics_commands] )) ||
_meshlens__subcmd__help__subcmd__diagnostics__subcmd__proxy-metrics_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens help diagnostics proxy-metrics commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__help__subcmd__edges_commands] )) ||
_meshlens__subcmd__help__subcmd__edges_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens help edges commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__help__subcmd__help_commands] )) ||
_meshlens__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens help help commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__help__subcmd__logs_commands] )) ||
_meshlens__subcmd__help__subcmd__logs_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens help logs commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__help__subcmd__profile_commands] )) ||
_meshlens__subcmd__help__subcmd__profile_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens help profile commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__help__subcmd__prometheus-config_commands] )) ||
_meshlens__subcmd__help__subcmd__prometheus-config_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens help prometheus-config commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__help__subcmd__proxy_commands] )) ||
_meshlens__subcmd__help__subcmd__proxy_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens help proxy commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__help__subcmd__routes_commands] )) ||
_meshlens__subcmd__help__subcmd__routes_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens help routes commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__help__subcmd__stat_commands] )) ||
_meshlens__subcmd__help__subcmd__stat_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens help stat commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__help__subcmd__tap_commands] )) ||
_meshlens__subcmd__help__subcmd__tap_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens help tap commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__help__subcmd__top_commands] )) ||
_meshlens__subcmd__help__subcmd__top_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens help top commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__help__subcmd__up_commands] )) ||
_meshlens__subcmd__help__subcmd__up_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens help up commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__logs_commands] )) ||
_meshlens__subcmd__logs_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens logs commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__profile_commands] )) ||
_meshlens__subcmd__profile_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens profile commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__prometheus-config_commands] )) ||
_meshlens__subcmd__prometheus-config_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens prometheus-config commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__proxy_commands] )) ||
_meshlens__subcmd__proxy_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens proxy commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__routes_commands] )) ||
_meshlens__subcmd__routes_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens routes commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__stat_commands] )) ||
_meshlens__subcmd__stat_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens stat commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__tap_commands] )) ||
_meshlens__subcmd__tap_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens tap commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__top_commands] )) ||
_meshlens__subcmd__top_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens top commands' commands "$@"
}
(( $+functions[_meshlens__subcmd__up_commands] )) ||
_meshlens__subcmd__up_commands() {
    local commands; commands=()
    _describe -t commands 'meshlens up commands' commands "$@"
}

if [ "$funcstack[1]" = "_meshlens" ]; then
    _meshlens "$@"
else
    compdef _meshlens meshlens
fi
