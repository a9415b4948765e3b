/*
 * Load test of the Specula gateway (sample-app): N concurrent clients stream chat completions for a while,
 * then a report of errors, throughput, latencies and the gateway's memory over time.
 *
 *   java tools/loadtest/LoadTest.java [--url http://localhost:8080] [--api-key KEY] [--pid PID] [--clients 64]
 *       [--stalled 0] [--disconnecting 0] [--misbehave-after 3] [--stall-for 40s] [--stalled-max-tokens N]
 *       [--disconnecting-max-tokens 1024]
 *       [--duration 120s] [--max-tokens 64] [--temperature 0] [--seed 42] [--max-requests N] [--grace 30s]
 *       [--request-timeout 120s] [--sample-interval 5s] [--wait-ready 120s] [--flat-threshold 1.10]
 *       [--out report.json] [--markdown report.md]
 *
 * Of the --clients, --stalled ones stop reading their stream after --misbehave-after chunks and stay silent for
 * --stall-for, --disconnecting ones close the connection after as many chunks; the rest are well-behaved and alone
 * count towards the errors (goal 0) and the latencies. The misbehaving clients are reported apart, with how their
 * requests ended and what the gateway's own counters say it generated for them.
 *
 * A single file, JDK 17 only (java.net.http, raw sockets for the misbehaving clients, a small hand-written JSON
 * reader). It starts nothing: the gateway must be running. Exit code 0 = no well-behaved request failed, 1 = at
 * least one failed, 2 = bad arguments or the gateway never became ready. See sample-app/README.md, "Load test".
 */

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReferenceArray;
import javax.net.ssl.SSLSocketFactory;

public class LoadTest {

    /** Short raw Python code starts: the embedded pair is a pair of Python code models; they continue code. */
    static final List<String> PROMPTS = List.of(
            "def parse_args(argv):",
            "def fibonacci(n):",
            "class Stack:",
            "def read_csv(path):",
            "def is_prime(n):",
            "def merge_sort(items):",
            "class LRUCache:\n    def __init__(self, capacity):",
            "def flatten(nested):",
            "import os\n\ndef list_files(directory):",
            "def binary_search(arr, target):",
            "def word_count(text):",
            "class Point:\n    def __init__(self, x, y):",
            "def reverse_string(s):",
            "def download(url, timeout=10):",
            "def factorial(n):",
            "def to_json(obj):",
            "class Node:\n    def __init__(self, value):",
            "def chunks(lst, n):",
            "def validate_email(address):",
            "def main():\n    args = parse_args(sys.argv[1:])");

    // ------------------------------------------------------------------------------------------ options

    static final class Options {
        String url = "http://localhost:8080";
        /** Sent as "Authorization: Bearer KEY" on every request, actuator reads included; never printed. */
        String apiKey;
        Long pid;
        int clients = 64;
        int stalled;
        int disconnecting;
        int misbehaveAfter = 3;
        Duration stallFor = Duration.ofSeconds(40);
        /** null: --max-tokens. */
        Integer stalledMaxTokens;
        int disconnectingMaxTokens = 1024;
        Duration duration = Duration.ofSeconds(120);
        int maxTokens = 64;
        double temperature = 0;
        long seed = 42;
        Long maxRequests;
        Duration grace = Duration.ofSeconds(30);
        Duration requestTimeout = Duration.ofSeconds(120);
        Duration sampleInterval = Duration.ofSeconds(5);
        Duration waitReady = Duration.ofSeconds(120);
        double flatThreshold = 1.10;
        Path out;
        Path markdown;
    }

    static final String USAGE = String.join("\n",
            "usage: java tools/loadtest/LoadTest.java [options]",
            "  --url URL               gateway base URL (default http://localhost:8080)",
            "  --api-key KEY           send 'Authorization: Bearer KEY' on every request, actuator included (never printed)",
            "  --pid PID               the gateway JVM's pid, to sample its RSS from /proc/PID/status",
            "  --clients N             concurrent clients, the misbehaving ones included (default 64)",
            "  --stalled N             of the clients, N stop reading their stream after --misbehave-after chunks, stay",
            "                          silent for --stall-for, then read what is left and close; one request a cycle",
            "                          (default 0)",
            "  --disconnecting N       of the clients, N close the connection after --misbehave-after chunks, again and",
            "                          again (default 0)",
            "  --misbehave-after N     content chunks a stalled or disconnecting client reads first (default 3)",
            "  --stall-for D           how long a stalled client reads nothing; longer than the gateway's write timeout",
            "                          (server.tomcat.connection-timeout, 30s) so that the gateway's cut shows (default 40s)",
            "  --stalled-max-tokens N  max_tokens of the stalled clients' requests (default: --max-tokens): their answers",
            "                          are generated in full, so longer ones measure long requests, not stalls",
            "  --disconnecting-max-tokens N  max_tokens of the disconnecting clients' requests (default 1024): long, so",
            "                          that a gateway generating on for gone clients would show it",
            "  --duration D            how long clients start new requests, e.g. 120s, 2m (default 120s)",
            "  --max-tokens N          max_tokens per request (default 64)",
            "  --temperature T         0 = greedy (default); > 0 samples, request i gets seed = --seed + i",
            "  --seed N                base seed for --temperature > 0 (default 42)",
            "  --max-requests N        stop starting requests after N in total (default: no limit)",
            "  --grace D               after --duration, wait this long for requests in flight, then cut them (default 30s)",
            "  --request-timeout D     a request taking longer fails as 'timeout' (default 120s)",
            "  --sample-interval D     memory/throughput sampling period (default 5s)",
            "  --wait-ready D          wait this long for the gateway to answer before starting (default 120s)",
            "  --flat-threshold R      memory counts as flat when mean(last third) / mean(middle third) <= R (default 1.10)",
            "  --out FILE              write the report as JSON",
            "  --markdown FILE         write the report as Markdown",
            "exit code: 0 no well-behaved request failed, 1 some failed, 2 bad arguments / gateway not ready");

    static Options parseArgs(String[] args) {
        Options o = new Options();
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            String value = null;
            int eq = arg.indexOf('=');
            if (arg.startsWith("--") && eq > 0) {
                value = arg.substring(eq + 1);
                arg = arg.substring(0, eq);
            }
            if (arg.equals("--help") || arg.equals("-h")) {
                System.out.println(USAGE);
                System.exit(0);
            }
            if (value == null) {
                if (i + 1 >= args.length) {
                    throw new IllegalArgumentException(arg + " needs a value");
                }
                value = args[++i];
            }
            switch (arg) {
                case "--url" -> o.url = value.replaceAll("/+$", "");
                case "--api-key" -> {
                    o.apiKey = value.strip();
                    if (o.apiKey.isEmpty() || o.apiKey.chars().anyMatch((ch) -> ch <= ' ' || ch == 0x7f)) {
                        throw new IllegalArgumentException("--api-key must be one word without white space");
                    }
                }
                case "--pid" -> o.pid = positiveLong(arg, value);
                case "--clients" -> o.clients = (int) positiveLong(arg, value);
                case "--stalled" -> o.stalled = (int) nonNegativeLong(arg, value);
                case "--disconnecting" -> o.disconnecting = (int) nonNegativeLong(arg, value);
                case "--misbehave-after" -> o.misbehaveAfter = (int) positiveLong(arg, value);
                case "--stall-for" -> o.stallFor = duration(arg, value);
                case "--stalled-max-tokens" -> o.stalledMaxTokens = (int) positiveLong(arg, value);
                case "--disconnecting-max-tokens" -> o.disconnectingMaxTokens = (int) positiveLong(arg, value);
                case "--duration" -> o.duration = duration(arg, value);
                case "--max-tokens" -> o.maxTokens = (int) positiveLong(arg, value);
                case "--temperature" -> {
                    o.temperature = number(arg, value);
                    if (o.temperature < 0) {
                        throw new IllegalArgumentException("--temperature must be >= 0");
                    }
                }
                case "--seed" -> o.seed = Long.parseLong(value);
                case "--max-requests" -> o.maxRequests = positiveLong(arg, value);
                case "--grace" -> o.grace = duration(arg, value);
                case "--request-timeout" -> o.requestTimeout = duration(arg, value);
                case "--sample-interval" -> o.sampleInterval = duration(arg, value);
                case "--wait-ready" -> o.waitReady = duration(arg, value);
                case "--flat-threshold" -> o.flatThreshold = number(arg, value);
                case "--out" -> o.out = Path.of(value);
                case "--markdown" -> o.markdown = Path.of(value);
                default -> throw new IllegalArgumentException("unknown option " + arg);
            }
        }
        if (o.sampleInterval.toMillis() < 100) {
            throw new IllegalArgumentException("--sample-interval must be at least 100ms");
        }
        if (o.requestTimeout.isZero()) {
            throw new IllegalArgumentException("--request-timeout must be > 0");
        }
        if ((long) o.stalled + o.disconnecting > o.clients) {
            throw new IllegalArgumentException("--stalled " + o.stalled + " + --disconnecting " + o.disconnecting
                    + " is more than --clients " + o.clients);
        }
        if (o.url.startsWith("https://") == o.url.startsWith("http://")) {
            throw new IllegalArgumentException("--url must start with http:// or https://: " + o.url);
        }
        return o;
    }

    static long positiveLong(String name, String value) {
        return integer(name, value, 1);
    }

    static long nonNegativeLong(String name, String value) {
        return integer(name, value, 0);
    }

    static long integer(String name, String value, long min) {
        long v;
        try {
            v = Long.parseLong(value.trim());
        }
        catch (NumberFormatException ex) {
            throw new IllegalArgumentException(name + ": not an integer: " + value);
        }
        if (v < min) {
            throw new IllegalArgumentException(name + " must be >= " + min + " but was " + value);
        }
        return v;
    }

    static double number(String name, String value) {
        try {
            return Double.parseDouble(value.trim());
        }
        catch (NumberFormatException ex) {
            throw new IllegalArgumentException(name + ": not a number: " + value);
        }
    }

    /** 120s, 2m, 500ms, 1h, or a plain number of seconds. */
    static Duration duration(String name, String value) {
        String v = value.trim().toLowerCase(Locale.ROOT);
        try {
            if (v.endsWith("ms")) {
                return Duration.ofMillis(Long.parseLong(v.substring(0, v.length() - 2)));
            }
            double amount = Double.parseDouble(v.replaceAll("[smh]$", ""));
            double seconds = v.endsWith("m") ? amount * 60 : v.endsWith("h") ? amount * 3600 : amount;
            if (seconds < 0) {
                throw new NumberFormatException();
            }
            return Duration.ofMillis(Math.round(seconds * 1000));
        }
        catch (NumberFormatException ex) {
            throw new IllegalArgumentException(name + ": not a duration (like 120s, 2m, 500ms): " + value);
        }
    }

    // ------------------------------------------------------------------------------------------ state

    /** What a client does with its streams. */
    enum Role {
        /** Reads every stream to [DONE]; its errors are the run's errors (goal 0). */
        WELL_BEHAVED("well-behaved"),
        /** Reads a few chunks, then nothing for --stall-for, then what is left; a raw socket with a small receive buffer. */
        STALLED("stalled"),
        /** Reads a few chunks, then closes the connection; a raw socket. */
        DISCONNECTING("disconnecting");

        final String label;

        Role(String label) {
            this.label = label;
        }
    }

    /** How long a stalled client reads after its stall before it calls the stream silent. */
    static final Duration RESUME_TIMEOUT = Duration.ofSeconds(10);

    /**
     * A stalled client's socket receive buffer: small, so that a stream the client does not read fills it (and then
     * the gateway's send buffer) after a few kilobytes instead of the megabytes loopback would take.
     */
    static final int STALLED_RECEIVE_BUFFER = 4096;

    /** One request's outcome. Times are System.nanoTime(). */
    static final class Result {
        long index;
        int client;
        Role role;
        int prompt;
        long start;
        long firstToken = -1;
        long end = -1;
        int status = -1;
        int contentChunks;
        Integer completionTokens;
        Integer promptTokens;
        boolean done;
        boolean cached;
        String finishReason;
        String errorKind;      // null = success
        String errorDetail;
        boolean cut;           // cut at the end of the grace period (not counted as an error)
        // Stalled and disconnecting clients. How the request ended: before the client misbehaved, "error" (see
        // errorKind), "ended_early" (the answer ended within the first chunks) or "cut_early" (the stream ended without
        // [DONE] within them). A disconnecting client's request then is "disconnected". A stalled client's, when it
        // reads again after the stall: "completed_after_stall" ([DONE] came: the gateway had written the whole answer,
        // into the sockets' buffers or once reading resumed), "cut_by_gateway" (the stream ended without [DONE]: the
        // gateway gave up on the silent client), "reset_by_gateway" (the connection was reset), "silent_after_stall"
        // (neither data nor an end within RESUME_TIMEOUT: the gateway holds the connection open and sends nothing).
        String outcome;
        int chunksBefore;      // content chunks read before misbehaving
        long misbehavedAt = -1;
        long stallNanos;       // how long a stalled client read nothing
        boolean stallShortened; // the stall ended early: the run ended
        int chunksAfterStall;
        long bytesAfterStall;  // body bytes read after the stall: what the sockets' buffers and the gateway still held

        int tokens() {
            return completionTokens != null ? completionTokens : contentChunks;
        }
    }

    /** What the watchdog and the end of the run need to stop a request in flight. */
    static final class InFlight {
        final long start = System.nanoTime();
        /** When the watchdog times the request out (System.nanoTime()). */
        final long deadline;
        volatile CompletableFuture<HttpResponse<InputStream>> future;
        volatile InputStream body;
        volatile Socket socket;
        volatile boolean cut;
        volatile boolean timedOut;

        InFlight(Duration timeout) {
            this.deadline = start + timeout.toNanos();
        }

        void abort() {
            CompletableFuture<HttpResponse<InputStream>> f = future;
            if (f != null) {
                f.cancel(true);
            }
            closeQuietly(body);
            closeQuietly(socket);
        }
    }

    /**
     * One sampling point. {@code heapAfterGcPercent}: Micrometer's jvm.memory.usage.after.gc, the long-lived heap pool
     * (G1 Old Gen, ...) used after the last collection, in percent of its maximum; it grows only with data that
     * survives collections. {@code underLoad}: taken while clients were still starting requests.
     */
    record Sample(double seconds, boolean underLoad, Double heapMb, Double nonHeapMb, Double heapAfterGcPercent,
            Double rssMb, long completed, long errors, int inFlight, double tokensPerSecond, Double batchSize,
            Double queueDepth, long stalledDone, long disconnects) {
    }

    final Options options;
    final HttpClient http;
    final List<Result> results = Collections.synchronizedList(new ArrayList<>());
    final AtomicReferenceArray<InFlight> inFlight;
    final AtomicLong issued = new AtomicLong();
    final AtomicLong completedCount = new AtomicLong();
    final AtomicLong errorCount = new AtomicLong();
    final AtomicLong completedTokens = new AtomicLong();
    final AtomicLong stalledDone = new AtomicLong();
    final AtomicLong disconnects = new AtomicLong();
    volatile boolean stopping;
    long runStart;

    LoadTest(Options options) {
        this.options = options;
        this.http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(5)).build();
        this.inFlight = new AtomicReferenceArray<>(options.clients);
    }

    public static void main(String[] args) throws Exception {
        Options options;
        try {
            options = parseArgs(args);
        }
        catch (IllegalArgumentException ex) {
            System.err.println("loadtest: " + ex.getMessage());
            System.err.println(USAGE);
            System.exit(2);
            return;
        }
        System.exit(new LoadTest(options).run());
    }

    // ------------------------------------------------------------------------------------------ the run

    int run() throws Exception {
        Options o = options;
        if (o.pid != null && !Files.isReadable(Path.of("/proc/" + o.pid + "/status"))) {
            System.err.println("loadtest: /proc/" + o.pid + "/status is not readable: is " + o.pid
                    + " the gateway's pid, on this machine?");
            return 2;
        }
        String notReady = waitUntilReady();
        if (notReady != null) {
            System.err.println("loadtest: the gateway at " + o.url + " is not ready: " + notReady);
            return 2;
        }
        String actuator = actuatorProblem();
        if (actuator != null) {
            System.out.println("loadtest: warning: " + actuator);
        }
        String rssSource = o.pid != null ? "/proc/" + o.pid + "/status VmRSS" : rssMetricName() != null
                ? "/actuator/metrics/" + rssMetricName() : null;
        System.out.printf(Locale.ROOT, "loadtest: %s%s, %d clients (%d well-behaved, %d stalled, %d disconnecting), %s%s, "
                + "max_tokens %d (stalled %d, disconnecting %d), temperature %s, RSS from %s%n",
                o.url, o.apiKey != null ? " with an API key" : "", o.clients, wellBehavedClients(), o.stalled,
                o.disconnecting, seconds(o.duration), o.maxRequests != null ? " or " + o.maxRequests + " requests" : "",
                o.maxTokens, stalledMaxTokens(), o.disconnectingMaxTokens, plain(o.temperature),
                rssSource != null ? rssSource : "nowhere (pass --pid)");

        Map<String, Double> countersBefore = gatewayCounters();
        List<Sample> samples = new ArrayList<>();
        runStart = System.nanoTime();
        samples.add(sample(0, false, 0, 0));
        List<Thread> threads = new ArrayList<>();
        for (int c = 0; c < o.clients; c++) {
            int client = c;
            Role role = role(c);
            Runnable loop = role == Role.WELL_BEHAVED ? () -> clientLoop(client) : () -> misbehavingLoop(client, role);
            Thread t = new Thread(loop, role.label + "-" + c);
            t.setDaemon(true);
            threads.add(t);
            t.start();
        }
        Thread watchdog = new Thread(this::watchdog, "watchdog");
        watchdog.setDaemon(true);
        watchdog.start();

        long interval = o.sampleInterval.toNanos();
        long stopAt = runStart + o.duration.toNanos();
        long graceEnd = Long.MAX_VALUE;
        long nextSample = runStart + interval;
        long lastCompleted = 0;
        long lastTokens = 0;
        long lastSampleAt = runStart;
        int cutCount = 0;
        while (true) {
            boolean alive = threads.stream().anyMatch(Thread::isAlive);
            long now = System.nanoTime();
            if (!stopping && (now >= stopAt || !alive)) {
                stopping = true;
                graceEnd = now + o.grace.toNanos();
                System.out.printf(Locale.ROOT, "t=%6.1fs  stopping: %d requests in flight, waiting up to %s%n",
                        (now - runStart) / 1e9, inFlightCount(), seconds(o.grace));
            }
            if (!alive) {
                break;
            }
            if (now >= graceEnd) {
                for (int c = 0; c < inFlight.length(); c++) {
                    InFlight f = inFlight.get(c);
                    if (f != null) {
                        f.cut = true;
                        f.abort();
                        cutCount++;
                    }
                }
                for (Thread t : threads) {
                    t.join(5000);
                }
                break;
            }
            if (now >= nextSample) {
                long completed = completedCount.get();
                long tokens = completedTokens.get();
                double dt = (now - lastSampleAt) / 1e9;
                Sample s = sample((now - runStart) / 1e9, nextSample <= stopAt, completed, (tokens - lastTokens) / dt);
                samples.add(s);
                printSample(s, completed - lastCompleted);
                lastCompleted = completed;
                lastTokens = tokens;
                lastSampleAt = now;
                nextSample += interval;
                continue;
            }
            long wake = Math.min(nextSample, Math.min(stopping ? graceEnd : stopAt, now + 200_000_000L));
            Thread.sleep(Math.max(1, (wake - now) / 1_000_000));
        }
        long end = System.nanoTime();
        double dt = (end - lastSampleAt) / 1e9;
        if (dt > 0.05) {
            Sample s = sample((end - runStart) / 1e9, false, completedCount.get(), (completedTokens.get() - lastTokens) / dt);
            samples.add(s);
            printSample(s, completedCount.get() - lastCompleted);
        }
        if (cutCount > 0) {
            System.out.printf("cut %d requests still in flight after the grace period%n", cutCount);
        }
        Map<String, Object> idle = waitForIdle();
        Map<String, Double> countersAfter = gatewayCounters();
        Map<String, Object> report = report(samples, end, rssSource, countersBefore, countersAfter, idle);
        String markdown = markdown(report);
        System.out.println();
        System.out.print(markdown);
        if (o.out != null) {
            writeFile(o.out, toJson(report, 0) + "\n");
        }
        if (o.markdown != null) {
            writeFile(o.markdown, markdown);
        }
        return ((Number) ((Map<?, ?>) report.get("requests")).get("errors")).longValue() > 0 ? 1 : 0;
    }

    void clientLoop(int client) {
        while (!stopping) {
            long index = issued.getAndIncrement();
            if (options.maxRequests != null && index >= options.maxRequests) {
                return;
            }
            InFlight f = new InFlight(options.requestTimeout);
            inFlight.set(client, f);
            Result r = request(client, index, f);
            inFlight.set(client, null);
            results.add(r);
            if (r.cut) {
                continue;
            }
            completedCount.incrementAndGet();
            if (r.errorKind == null) {
                completedTokens.addAndGet(r.tokens());
            }
            else {
                errorCount.incrementAndGet();
                // Do not hammer a gateway that turns requests away (429 says Retry-After: 1).
                sleepQuietly(r.status == 429 || r.status == 503 ? 1000 : 500);
            }
        }
    }

    /**
     * A stalled or disconnecting client: one request after another on a fresh connection, each abandoned as its role
     * says ({@link #misbehavingRequest}); reported apart from the well-behaved clients' requests.
     */
    void misbehavingLoop(int client, Role role) {
        while (!stopping) {
            long index = issued.getAndIncrement();
            if (options.maxRequests != null && index >= options.maxRequests) {
                return;
            }
            // a stalled request also waits out its stall (and then reads for at most RESUME_TIMEOUT)
            InFlight f = new InFlight(role == Role.STALLED
                    ? options.requestTimeout.plus(options.stallFor).plus(RESUME_TIMEOUT) : options.requestTimeout);
            inFlight.set(client, f);
            Result r = misbehavingRequest(client, role, index, f);
            inFlight.set(client, null);
            results.add(r);
            if (r.cut) {
                continue;
            }
            if (role == Role.STALLED) {
                stalledDone.incrementAndGet();
            }
            else if ("disconnected".equals(r.outcome)) {
                disconnects.incrementAndGet();
            }
            if (r.errorKind != null) {
                sleepQuietly(r.status == 429 || r.status == 503 ? 1000 : 500);
            }
        }
    }

    Role role(int client) {
        int wellBehaved = wellBehavedClients();
        return client < wellBehaved ? Role.WELL_BEHAVED
                : client < wellBehaved + options.stalled ? Role.STALLED : Role.DISCONNECTING;
    }

    int stalledMaxTokens() {
        return options.stalledMaxTokens != null ? options.stalledMaxTokens : options.maxTokens;
    }

    int wellBehavedClients() {
        return options.clients - options.stalled - options.disconnecting;
    }

    void watchdog() {
        while (true) {
            long now = System.nanoTime();
            for (int c = 0; c < inFlight.length(); c++) {
                InFlight f = inFlight.get(c);
                if (f != null && !f.timedOut && now - f.deadline > 0) {
                    f.timedOut = true;
                    f.abort();
                }
            }
            sleepQuietly(250);
        }
    }

    int inFlightCount() {
        int n = 0;
        for (int c = 0; c < inFlight.length(); c++) {
            if (inFlight.get(c) != null) {
                n++;
            }
        }
        return n;
    }

    /**
     * Accept JSON too: errors before the first chunk are JSON bodies, and with "Accept: text/event-stream" alone the
     * gateway cannot write them (HttpMediaTypeNotAcceptableException: a bare 500 instead of the 400/429/503).
     */
    static final String ACCEPT = "text/event-stream, application/json";

    /** A streamed chat completion of the prompt for request {@code index}. */
    String requestBody(long index, int maxTokens) {
        StringBuilder body = new StringBuilder();
        body.append("{\"messages\": [{\"role\": \"user\", \"content\": ").append(quote(PROMPTS.get((int) (index % PROMPTS.size()))))
                .append("}], \"max_tokens\": ").append(maxTokens)
                .append(", \"temperature\": ").append(plain(options.temperature));
        if (options.temperature > 0) {
            body.append(", \"seed\": ").append(options.seed + index);
        }
        body.append(", \"stream\": true, \"stream_options\": {\"include_usage\": true}}");
        return body.toString();
    }

    /** With the API key, when there is one. */
    HttpRequest.Builder authorized(HttpRequest.Builder builder) {
        return options.apiKey != null ? builder.header("Authorization", "Bearer " + options.apiKey) : builder;
    }

    /** One streamed chat completion, read to its end. Never throws. */
    Result request(int client, long index, InFlight f) {
        Result r = new Result();
        r.index = index;
        r.client = client;
        r.role = Role.WELL_BEHAVED;
        r.prompt = (int) (index % PROMPTS.size());
        HttpRequest request = authorized(HttpRequest.newBuilder(URI.create(options.url + "/v1/chat/completions")))
                .timeout(options.requestTimeout)
                .header("Content-Type", "application/json").header("Accept", ACCEPT)
                .POST(HttpRequest.BodyPublishers.ofString(requestBody(index, options.maxTokens))).build();
        r.start = System.nanoTime();
        try {
            CompletableFuture<HttpResponse<InputStream>> future = http.sendAsync(request,
                    HttpResponse.BodyHandlers.ofInputStream());
            f.future = future;
            if (f.cut || f.timedOut) {
                future.cancel(true);
            }
            HttpResponse<InputStream> response = future.get();
            r.status = response.statusCode();
            f.body = response.body();
            if (f.cut || f.timedOut) {
                f.abort();
            }
            try (InputStream in = response.body()) {
                if (r.status != 200) {
                    httpError(r, new String(in.readNBytes(8192), StandardCharsets.UTF_8));
                }
                else {
                    readEvents(new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8)), r);
                }
            }
        }
        catch (ExecutionException ex) {
            fail(r, ex.getCause() != null ? ex.getCause() : ex);
        }
        catch (IOException | RuntimeException ex) {
            fail(r, ex);
        }
        catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
            fail(r, ex);
        }
        if (r.end < 0) {
            r.end = System.nanoTime();
        }
        if (f.cut) {
            r.cut = true;
            r.errorKind = null;
            r.errorDetail = null;
        }
        else if (f.timedOut && (r.errorKind == null || !r.done)) {
            r.errorKind = "timeout";
            r.errorDetail = "no [DONE] within " + seconds(options.requestTimeout);
        }
        else if (r.errorKind == null && !r.done && r.status == 200) {
            r.errorKind = "missing_done";
            r.errorDetail = "the stream ended without data: [DONE] after " + r.contentChunks + " content chunks";
        }
        return r;
    }

    /** A response with another status than 200: the error kind from its status and OpenAI error code. */
    static void httpError(Result r, String body) {
        r.end = System.nanoTime();
        String code = null;
        String message = body;
        try {
            Object error = Json.at(Json.parse(body), "error");
            code = Json.string(Json.at(error, "code"));
            message = Json.string(Json.at(error, "message"));
        }
        catch (RuntimeException notJson) {
            // keep the raw text
        }
        r.errorKind = "http_" + r.status + (code != null ? "_" + code : "");
        r.errorDetail = message;
    }

    /**
     * One request of a stalled or disconnecting client, over its own connection (a raw socket, so that what reaches
     * the gateway is exactly what the client does: no client library buffering or closing behind its back). It reads
     * the first --misbehave-after content chunks, then a disconnecting client closes the socket; a stalled client
     * reads nothing for --stall-for (less if the run ends first), then reads for at most {@link #RESUME_TIMEOUT} to
     * learn how the gateway ended the stream, and closes. Never throws.
     */
    Result misbehavingRequest(int client, Role role, long index, InFlight f) {
        Result r = new Result();
        r.index = index;
        r.client = client;
        r.role = role;
        r.prompt = (int) (index % PROMPTS.size());
        r.start = System.nanoTime();
        Socket socket = null;
        try {
            socket = connect(role == Role.STALLED ? STALLED_RECEIVE_BUFFER : 0);
            f.socket = socket;
            if (f.cut || f.timedOut) {
                socket.close();
            }
            socket.setSoTimeout((int) options.requestTimeout.toMillis());
            byte[] body = requestBody(index, role == Role.STALLED ? stalledMaxTokens() : options.disconnectingMaxTokens)
                    .getBytes(StandardCharsets.UTF_8);
            URI uri = URI.create(options.url);
            StringBuilder head = new StringBuilder()
                    .append("POST ").append(uri.getRawPath() == null ? "" : uri.getRawPath()).append("/v1/chat/completions HTTP/1.1\r\n")
                    .append("Host: ").append(uri.getRawAuthority()).append("\r\n")
                    .append("Content-Type: application/json\r\n")
                    .append("Accept: ").append(ACCEPT).append("\r\n")
                    .append("Content-Length: ").append(body.length).append("\r\n")
                    .append("Connection: close\r\n");
            if (options.apiKey != null) {
                head.append("Authorization: Bearer ").append(options.apiKey).append("\r\n");
            }
            head.append("\r\n");
            OutputStream out = socket.getOutputStream();
            out.write(head.toString().getBytes(StandardCharsets.ISO_8859_1));
            out.write(body);
            out.flush();
            RawResponse response = new RawResponse(socket.getInputStream());
            r.status = response.status;
            if (r.status != 200) {
                httpError(r, response.text(8192));
                r.outcome = "error";
                return r;
            }
            String line;
            while (r.contentChunks < options.misbehaveAfter && !r.done && (line = response.readLine()) != null) {
                event(line, r);
            }
            if (r.errorKind != null) {
                r.outcome = "error";
                return r;
            }
            if (r.contentChunks < options.misbehaveAfter) {
                r.outcome = r.done ? "ended_early" : "cut_early";
                return r;
            }
            r.chunksBefore = r.contentChunks;
            r.misbehavedAt = System.nanoTime();
            if (role == Role.DISCONNECTING) {
                // closing with unread data in the receive buffer: the kernel answers the gateway's next write with a
                // reset, as when a browser tab or a client process goes
                socket.close();
                r.end = r.misbehavedAt;
                r.outcome = "disconnected";
                return r;
            }
            long stallEnd = r.misbehavedAt + options.stallFor.toNanos();
            while (System.nanoTime() - stallEnd < 0 && !stopping && !f.cut) {
                Thread.sleep(Math.max(1, Math.min(100, (stallEnd - System.nanoTime()) / 1_000_000)));
            }
            long resumed = System.nanoTime();
            r.stallNanos = resumed - r.misbehavedAt;
            r.stallShortened = resumed - stallEnd < 0;
            socket.setSoTimeout((int) RESUME_TIMEOUT.toMillis());
            long bytesBefore = response.bodyBytes;
            try {
                while ((line = response.readLine()) != null) {
                    event(line, r);
                }
                r.outcome = r.done ? "completed_after_stall" : "cut_by_gateway";
            }
            catch (SocketTimeoutException ex) {
                r.outcome = "silent_after_stall";
            }
            catch (IOException ex) {
                r.outcome = "reset_by_gateway";
            }
            r.chunksAfterStall = r.contentChunks - r.chunksBefore;
            r.bytesAfterStall = response.bodyBytes - bytesBefore;
            r.end = System.nanoTime();
            if (r.errorKind != null) {
                r.outcome = "error";
            }
        }
        catch (IOException | RuntimeException ex) {
            fail(r, ex);
            r.outcome = "error";
        }
        catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
            fail(r, ex);
            r.outcome = "error";
        }
        finally {
            closeQuietly(socket);
            if (r.end < 0) {
                r.end = System.nanoTime();
            }
            if (f.cut) {
                r.cut = true;
                r.errorKind = null;
                r.errorDetail = null;
            }
            else if (f.timedOut) {
                // the watchdog closed the socket: what was read after that says nothing about the gateway
                r.outcome = "error";
                r.errorKind = "timeout";
                r.errorDetail = "not over within " + seconds(Duration.ofNanos(f.deadline - f.start));
            }
        }
        return r;
    }

    /** A new connection to the gateway; {@code receiveBuffer} > 0 sets SO_RCVBUF (before connecting, so that it holds). */
    Socket connect(int receiveBuffer) throws IOException {
        URI uri = URI.create(options.url);
        boolean tls = "https".equals(uri.getScheme());
        int port = uri.getPort() > 0 ? uri.getPort() : tls ? 443 : 80;
        Socket socket = new Socket();
        try {
            if (receiveBuffer > 0) {
                socket.setReceiveBufferSize(receiveBuffer);
            }
            socket.connect(new InetSocketAddress(uri.getHost(), port), 5000);
            socket.setTcpNoDelay(true);
            return tls ? ((SSLSocketFactory) SSLSocketFactory.getDefault()).createSocket(socket, uri.getHost(), port, true)
                    : socket;
        }
        catch (IOException ex) {
            socket.close();
            throw ex;
        }
    }

    /**
     * An HTTP/1.1 response read off a socket: the status line and headers at once, then the body (chunked, or of a
     * Content-Length, or up to the end of the connection) a line at a time, as the client asks for it, never ahead:
     * what the client does not read stays in the socket.
     */
    static final class RawResponse {
        final InputStream in;
        final int status;
        final boolean chunked;
        long remaining;        // of the current chunk, or of a Content-Length body; -1: until the connection ends
        boolean ended;
        long bodyBytes;

        RawResponse(InputStream socketInput) throws IOException {
            this.in = new java.io.BufferedInputStream(socketInput, 1024);
            String statusLine = headerLine();
            if (statusLine == null || !statusLine.startsWith("HTTP/1.")) {
                throw new IOException("not an HTTP response: " + abbreviate(statusLine, 100));
            }
            String[] parts = statusLine.split(" ", 3);
            status = Integer.parseInt(parts[1]);
            boolean isChunked = false;
            long length = -1;
            String header;
            while ((header = headerLine()) != null && !header.isEmpty()) {
                int colon = header.indexOf(':');
                if (colon < 0) {
                    continue;
                }
                String name = header.substring(0, colon).trim().toLowerCase(Locale.ROOT);
                String value = header.substring(colon + 1).trim();
                if (name.equals("transfer-encoding") && value.toLowerCase(Locale.ROOT).contains("chunked")) {
                    isChunked = true;
                }
                else if (name.equals("content-length")) {
                    length = Long.parseLong(value);
                }
            }
            chunked = isChunked;
            remaining = chunked ? 0 : length;
            ended = !chunked && length == 0;
        }

        /** One line of the body without its end of line, or null at its end. */
        String readLine() throws IOException {
            java.io.ByteArrayOutputStream line = new java.io.ByteArrayOutputStream(256);
            int b;
            while ((b = bodyByte()) >= 0) {
                if (b == '\n') {
                    return trimCr(line);
                }
                line.write(b);
            }
            return line.size() > 0 ? trimCr(line) : null;
        }

        /** At most {@code max} bytes of the body, as text. */
        String text(int max) throws IOException {
            java.io.ByteArrayOutputStream text = new java.io.ByteArrayOutputStream();
            int b;
            while (text.size() < max && (b = bodyByte()) >= 0) {
                text.write(b);
            }
            return text.toString(StandardCharsets.UTF_8);
        }

        private int bodyByte() throws IOException {
            if (ended) {
                return -1;
            }
            if (chunked && remaining == 0) {
                String size = headerLine();   // the CRLF after the previous chunk's data comes first
                if (size != null && size.isEmpty()) {
                    size = headerLine();
                }
                if (size == null) {
                    ended = true;
                    return -1;
                }
                int extension = size.indexOf(';');
                remaining = Long.parseLong((extension >= 0 ? size.substring(0, extension) : size).trim(), 16);
                if (remaining == 0) {
                    ended = true;   // the last chunk (trailers, if any, are not read)
                    return -1;
                }
            }
            int b = in.read();
            if (b < 0) {
                ended = true;
                return -1;
            }
            bodyBytes++;
            if (remaining > 0) {
                remaining--;
                if (!chunked && remaining == 0) {
                    ended = true;
                }
            }
            return b;
        }

        /** A CRLF- (or LF-) terminated line of the head or the chunk framing; null at the end of the connection. */
        private String headerLine() throws IOException {
            java.io.ByteArrayOutputStream line = new java.io.ByteArrayOutputStream(64);
            int b;
            while ((b = in.read()) >= 0) {
                if (b == '\n') {
                    return trimCr(line);
                }
                line.write(b);
            }
            return line.size() > 0 ? trimCr(line) : null;
        }

        private static String trimCr(java.io.ByteArrayOutputStream line) {
            String s = line.toString(StandardCharsets.UTF_8);
            return s.endsWith("\r") ? s.substring(0, s.length() - 1) : s;
        }
    }

    static void closeQuietly(java.io.Closeable closeable) {
        if (closeable != null) {
            try {
                closeable.close();
            }
            catch (IOException ignored) {
                // closing is all we want
            }
        }
    }

    void fail(Result r, Throwable ex) {
        if (r.errorKind != null) {
            return;
        }
        r.errorKind = ex instanceof HttpTimeoutException ? "timeout"
                : ex instanceof ConnectException ? "connect_refused"
                : "exception_" + ex.getClass().getSimpleName();
        r.errorDetail = String.valueOf(ex.getMessage());
    }

    /** Server-sent events: "data: {json}" lines, "data: [DONE]" last. */
    static void readEvents(BufferedReader reader, Result r) throws IOException {
        String line;
        while ((line = reader.readLine()) != null) {
            // after [DONE], read on to the end of the response so the connection can be reused
            event(line, r);
        }
    }

    /** One line of server-sent events: "data: {json}" or "data: [DONE]"; blank separators, comments, other fields skipped. */
    static void event(String line, Result r) {
        if (!line.startsWith("data:")) {
            return;
        }
        String data = line.substring(5).trim();
        long now = System.nanoTime();
        if (data.equals("[DONE]")) {
            r.done = true;
            r.end = now;
            return;
        }
        Object event;
        try {
            event = Json.parse(data);
        }
        catch (RuntimeException ex) {
            if (r.errorKind == null) {
                r.errorKind = "bad_event";
                r.errorDetail = ex.getMessage() + ": " + abbreviate(data, 200);
            }
            return;
        }
        Object error = Json.at(event, "error");
        if (error != null) {
            if (r.errorKind == null) {
                r.errorKind = "error_event";
                r.errorDetail = Json.string(Json.at(error, "message"));
            }
            return;
        }
        Object choice = Json.at(event, "choices", 0);
        if (choice != null) {
            String content = Json.string(Json.at(choice, "delta", "content"));
            if (content != null && !content.isEmpty()) {
                r.contentChunks++;
                if (r.firstToken < 0) {
                    r.firstToken = now;
                }
            }
            String finish = Json.string(Json.at(choice, "finish_reason"));
            if (finish != null) {
                r.finishReason = finish;
            }
        }
        if (Boolean.TRUE.equals(Json.at(event, "speculation", "cached"))) {
            r.cached = true;
        }
        Object usage = Json.at(event, "usage");
        if (usage != null) {
            Number completion = (Number) Json.at(usage, "completion_tokens");
            Number prompt = (Number) Json.at(usage, "prompt_tokens");
            r.completionTokens = completion == null ? null : completion.intValue();
            r.promptTokens = prompt == null ? null : prompt.intValue();
        }
    }

    /** Until a small non-streamed request is answered 200 (the models load in the background: 503 until then). */
    String waitUntilReady() throws InterruptedException {
        long deadline = System.nanoTime() + options.waitReady.toNanos();
        String last = null;
        boolean told = false;
        do {
            try {
                HttpRequest request = authorized(HttpRequest.newBuilder(URI.create(options.url + "/v1/chat/completions")))
                        .timeout(Duration.ofSeconds(60)).header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString(
                                "{\"messages\": [{\"role\": \"user\", \"content\": \"def ready():\"}], \"max_tokens\": 1}"))
                        .build();
                HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
                if (response.statusCode() == 200) {
                    return null;
                }
                last = "HTTP " + response.statusCode() + ": " + abbreviate(response.body(), 300);
                if (response.statusCode() == 401) {
                    return last + (options.apiKey == null ? " (the gateway wants an API key: pass --api-key)"
                            : " (the gateway refused the --api-key given)");
                }
                if (response.statusCode() != 503 && response.statusCode() != 429) {
                    return last;
                }
            }
            catch (IOException ex) {
                last = ex.toString();
            }
            if (!told) {
                System.out.println("loadtest: waiting for the gateway (" + last + ")");
                told = true;
            }
            Thread.sleep(2000);
        } while (System.nanoTime() < deadline);
        return last + " (after " + seconds(options.waitReady) + ")";
    }

    // ------------------------------------------------------------------------------------------ sampling

    private volatile String rssMetric = "";   // "" = not looked up yet, null = none

    /** A process resident-memory meter the gateway may export (Micrometer has none by default). */
    String rssMetricName() {
        if ("".equals(rssMetric)) {
            String found = null;
            for (String name : List.of("process.memory.rss", "process.resident.memory", "process.memory.resident")) {
                if (metric(name, null) != null) {
                    found = name;
                    break;
                }
            }
            rssMetric = found;
        }
        return rssMetric;
    }

    Sample sample(double seconds, boolean underLoad, long completed, double tokensPerSecond) {
        Double heap = mb(metric("jvm.memory.used", "area:heap"));
        Double nonHeap = mb(metric("jvm.memory.used", "area:nonheap"));
        Double afterGc = metric("jvm.memory.usage.after.gc", "area:heap");
        if (afterGc != null) {
            afterGc *= 100;
        }
        Double rss = null;
        if (options.pid != null) {
            rss = rssFromProc(options.pid);
        }
        else if (rssMetricName() != null) {
            rss = mb(metric(rssMetricName(), null));
        }
        return new Sample(seconds, underLoad, heap, nonHeap, afterGc, rss, completed, errorCount.get(), inFlightCount(),
                tokensPerSecond, metric("specula.batch.size", null), metric("specula.queue.depth", null),
                stalledDone.get(), disconnects.get());
    }

    /** measurements[0].value of /actuator/metrics/NAME[?tag=TAG] (a counter's or timer's COUNT), or null. */
    Double metric(String name, String tag) {
        Object body = actuator("/actuator/metrics/" + name + (tag != null ? "?tag=" + tag : ""));
        Object value = Json.at(body, "measurements", 0, "value");
        return value instanceof Number n ? n.doubleValue() : null;
    }

    /** The JSON of an actuator read, or null when it failed. */
    Object actuator(String path) {
        try {
            HttpResponse<String> response = http.send(authorized(HttpRequest.newBuilder(URI.create(options.url + path)))
                    .timeout(Duration.ofSeconds(3)).GET().build(), HttpResponse.BodyHandlers.ofString());
            return response.statusCode() == 200 ? Json.parse(response.body()) : null;
        }
        catch (IOException | RuntimeException ex) {
            return null;
        }
        catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    /** Why /actuator/metrics cannot be read (memory and the gateway's counters then go unmeasured), or null. */
    String actuatorProblem() {
        try {
            HttpResponse<String> response = http.send(authorized(HttpRequest.newBuilder(URI.create(options.url
                    + "/actuator/metrics"))).timeout(Duration.ofSeconds(5)).GET().build(), HttpResponse.BodyHandlers.ofString());
            int status = response.statusCode();
            return status == 200 ? null
                    : "/actuator/metrics answered " + status + (status == 401 || status == 403
                            ? ": memory and the gateway's counters are not measured (the actuator needs an API key: --api-key)"
                            : status == 404 ? ": memory and the gateway's counters are not measured (expose metrics: "
                                    + "management.endpoints.web.exposure.include)" : "");
        }
        catch (IOException ex) {
            return "/actuator/metrics cannot be read: " + ex;
        }
        catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
            return "interrupted";
        }
    }

    /**
     * The gateway's own figures on what it generated and what it holds, from its actuator (null where a meter is
     * missing): counters {@code generated_tokens} (specula.generated.tokens, every policy; cancelled generations count
     * the tokens made before they stopped), {@code generations} (the specula.generation timer's count: one per
     * generation, cancelled ones included), {@code requests_rejected}; gauges {@code batch_size}, {@code
     * queue_depth}, {@code kv_reserved_bytes}; and /actuator/specula's {@code generation_slots_free} / {@code _total}.
     */
    Map<String, Double> gatewayCounters() {
        Map<String, Double> m = new LinkedHashMap<>();
        m.put("generated_tokens", metric("specula.generated.tokens", null));
        m.put("generations", metric("specula.generation", null));
        m.put("requests_rejected", metric("specula.requests.rejected", null));
        m.put("batch_size", metric("specula.batch.size", null));
        m.put("queue_depth", metric("specula.queue.depth", null));
        m.put("kv_reserved_bytes", metric("specula.kv.reserved.bytes", null));
        Object specula = actuator("/actuator/specula");
        Object free = Json.at(specula, "generationSlots", "free");
        Object total = Json.at(specula, "generationSlots", "total");
        m.put("generation_slots_free", free instanceof Number n ? n.doubleValue() : null);
        m.put("generation_slots_total", total instanceof Number n ? n.doubleValue() : null);
        return m;
    }

    /** How long the gateway takes, once every client has gone, to hold nothing: at most {@link #IDLE_WAIT}. */
    static final Duration IDLE_WAIT = Duration.ofSeconds(30);

    /**
     * Waits until the gateway is idle (batch size, queue depth and reserved KV 0, every generation slot free) and says
     * after how long, or that it was not within {@link #IDLE_WAIT}: a generation still running for a client that has
     * gone would keep it busy.
     */
    Map<String, Object> waitForIdle() {
        long start = System.nanoTime();
        Map<String, Double> now;
        boolean idle;
        do {
            now = gatewayCounters();
            idle = isZero(now.get("batch_size")) && isZero(now.get("queue_depth")) && isZero(now.get("kv_reserved_bytes"))
                    && Objects.equals(now.get("generation_slots_free"), now.get("generation_slots_total"));
            if (!idle) {
                sleepQuietly(250);
            }
        } while (!idle && System.nanoTime() - start < IDLE_WAIT.toNanos());
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("idle", idle);
        m.put("after_s", (System.nanoTime() - start) / 1e9);
        m.put("measured", now.values().stream().anyMatch(Objects::nonNull));
        return m;
    }

    static boolean isZero(Double value) {
        return value == null || value == 0;
    }

    static Double rssFromProc(long pid) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
                if (line.startsWith("VmRSS:")) {
                    String[] parts = line.substring(6).trim().split("\\s+");
                    return Long.parseLong(parts[0]) / 1024.0;   // kB
                }
            }
        }
        catch (IOException | RuntimeException ex) {
            // the process is gone
        }
        return null;
    }

    static Double mb(Double bytes) {
        return bytes == null ? null : bytes / (1024.0 * 1024.0);
    }

    void printSample(Sample s, long completedInInterval) {
        String misbehaving = options.stalled + options.disconnecting == 0 ? ""
                : String.format(Locale.ROOT, "  stalled %d  disconnects %d", s.stalledDone(), s.disconnects());
        System.out.printf(Locale.ROOT, "t=%6.1fs  done %5d (+%d)  in flight %2d  errors %d  %7.1f tok/s  batch %s  queue %s"
                + "  heap %s MB  RSS %s MB%s%n", s.seconds(), s.completed(), completedInInterval, s.inFlight(), s.errors(),
                s.tokensPerSecond(), fmt(s.batchSize()), fmt(s.queueDepth()), fmt1(s.heapMb()), fmt1(s.rssMb()), misbehaving);
    }

    // ------------------------------------------------------------------------------------------ the report

    Map<String, Object> report(List<Sample> samples, long end, String rssSource, Map<String, Double> countersBefore,
            Map<String, Double> countersAfter, Map<String, Object> idle) {
        List<Result> everyone;
        synchronized (results) {
            everyone = new ArrayList<>(results);
        }
        everyone.sort((a, b) -> Long.compare(a.index, b.index));
        // the well-behaved clients' requests: the errors (goal 0), throughput and latencies
        List<Result> all = everyone.stream().filter((r) -> r.role == Role.WELL_BEHAVED).toList();
        List<Result> finished = all.stream().filter((r) -> !r.cut).toList();
        List<Result> ok = finished.stream().filter((r) -> r.errorKind == null).toList();
        List<Result> failed = finished.stream().filter((r) -> r.errorKind != null).toList();
        long cut = all.stream().filter((r) -> r.cut).count();
        long cached = ok.stream().filter((r) -> r.cached).count();
        long withoutUsage = ok.stream().filter((r) -> r.completionTokens == null).count();
        long tokens = ok.stream().mapToLong(Result::tokens).sum();
        long lastEnd = finished.stream().mapToLong((r) -> r.end).max().orElse(end);
        double wall = (lastEnd - runStart) / 1e9;

        double[] ttft = ok.stream().filter((r) -> r.firstToken >= 0).mapToDouble((r) -> (r.firstToken - r.start) / 1e6).sorted().toArray();
        double[] perToken = ok.stream().filter((r) -> r.firstToken >= 0 && r.tokens() >= 2)
                .mapToDouble((r) -> (r.end - r.firstToken) / 1e6 / (r.tokens() - 1)).sorted().toArray();
        double[] total = ok.stream().mapToDouble((r) -> (r.end - r.start) / 1e6).sorted().toArray();

        Map<String, Object> report = new LinkedHashMap<>();
        Map<String, Object> settings = new LinkedHashMap<>();
        settings.put("url", options.url);
        settings.put("api_key", options.apiKey != null);   // whether one was sent, never which
        settings.put("clients", options.clients);
        settings.put("well_behaved_clients", wellBehavedClients());
        settings.put("stalled_clients", options.stalled);
        settings.put("disconnecting_clients", options.disconnecting);
        settings.put("misbehave_after_chunks", options.misbehaveAfter);
        settings.put("stall_for_s", options.stallFor.toMillis() / 1000.0);
        settings.put("stalled_max_tokens", stalledMaxTokens());
        settings.put("disconnecting_max_tokens", options.disconnectingMaxTokens);
        settings.put("duration_s", options.duration.toMillis() / 1000.0);
        settings.put("max_requests", options.maxRequests);
        settings.put("max_tokens", options.maxTokens);
        settings.put("temperature", options.temperature);
        settings.put("seed", options.temperature > 0 ? options.seed : null);
        settings.put("grace_s", options.grace.toMillis() / 1000.0);
        settings.put("request_timeout_s", options.requestTimeout.toMillis() / 1000.0);
        settings.put("sample_interval_s", options.sampleInterval.toMillis() / 1000.0);
        settings.put("prompts", PROMPTS.size());
        settings.put("rss_source", rssSource);
        settings.put("started_at", Instant.now().minusNanos(System.nanoTime() - runStart).toString());
        settings.put("available_processors_client", Runtime.getRuntime().availableProcessors());
        report.put("settings", settings);

        Map<String, Object> requests = new LinkedHashMap<>();
        requests.put("total", finished.size());
        requests.put("succeeded", ok.size());
        requests.put("errors", failed.size());
        requests.put("cut_after_grace", cut);
        requests.put("cached_answers", cached);
        requests.put("without_usage_chunk", withoutUsage);
        requests.put("empty_answers", ok.stream().filter((r) -> r.firstToken < 0).count());
        Map<String, Object> statuses = new TreeMap<>();
        for (Result r : all) {
            statuses.merge(r.status < 0 ? "none" : String.valueOf(r.status), 1L, (a, b) -> (Long) a + (Long) b);
        }
        requests.put("http_statuses", statuses);
        Map<String, Object> finishReasons = new TreeMap<>();
        for (Result r : ok) {
            finishReasons.merge(String.valueOf(r.finishReason), 1L, (a, b) -> (Long) a + (Long) b);
        }
        requests.put("finish_reasons", finishReasons);
        report.put("requests", requests);

        report.put("errors", errorKinds(failed));

        Map<String, Object> throughput = new LinkedHashMap<>();
        throughput.put("completion_tokens", tokens);
        throughput.put("wall_s", wall);
        throughput.put("completion_tokens_per_s", wall > 0 ? tokens / wall : null);
        throughput.put("requests_per_s", wall > 0 ? ok.size() / wall : null);
        throughput.put("mean_completion_tokens", ok.isEmpty() ? null : (double) tokens / ok.size());
        report.put("throughput", throughput);

        Map<String, Object> latency = new LinkedHashMap<>();
        latency.put("ttft_ms", percentiles(ttft, 50, 90, 99));
        latency.put("per_token_ms", percentiles(perToken, 50, 90, 99));
        latency.put("request_ms", percentiles(total, 50, 90, 99));
        report.put("latency", latency);
        if (options.stalled > 0) {
            report.put("stalled", misbehaving(everyone, Role.STALLED, options.stalled));
        }
        if (options.disconnecting > 0) {
            report.put("disconnecting", misbehaving(everyone, Role.DISCONNECTING, options.disconnecting));
        }
        report.put("gateway", gatewayEvidence(everyone, countersBefore, countersAfter, idle));

        List<Object> series = new ArrayList<>();
        for (Sample s : samples) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("t_s", s.seconds());
            m.put("heap_used_mb", s.heapMb());
            m.put("nonheap_used_mb", s.nonHeapMb());
            m.put("under_load", s.underLoad());
            m.put("heap_after_gc_percent", s.heapAfterGcPercent());
            m.put("rss_mb", s.rssMb());
            m.put("completed", s.completed());
            m.put("errors", s.errors());
            m.put("in_flight", s.inFlight());
            m.put("tokens_per_s", s.tokensPerSecond());
            m.put("batch_size", s.batchSize());
            m.put("queue_depth", s.queueDepth());
            m.put("stalled_done", s.stalledDone());
            m.put("disconnects", s.disconnects());
            series.add(m);
        }
        Map<String, Object> memory = new LinkedHashMap<>();
        List<Sample> loaded = samples.stream().filter(Sample::underLoad).toList();
        memory.put("samples_compared", loaded.size());
        memory.put("flat_threshold", options.flatThreshold);
        memory.put("heap", flatness(loaded.stream().map(Sample::heapMb).toList()));
        memory.put("heap_after_gc", flatness(loaded.stream().map(Sample::heapAfterGcPercent).toList()));
        memory.put("rss", flatness(loaded.stream().map(Sample::rssMb).toList()));
        memory.put("series", series);
        report.put("memory", memory);
        return report;
    }

    /** The requests of the stalled or the disconnecting clients: how they ended, and what they read. */
    Map<String, Object> misbehaving(List<Result> everyone, Role role, int clients) {
        List<Result> all = everyone.stream().filter((r) -> r.role == role).toList();
        List<Result> finished = all.stream().filter((r) -> !r.cut).toList();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("clients", clients);
        m.put("requests", finished.size());
        m.put("cut_after_grace", all.size() - finished.size());
        Map<String, Object> outcomes = new TreeMap<>();
        for (Result r : finished) {
            outcomes.merge(String.valueOf(r.outcome), 1L, (a, b) -> (Long) a + (Long) b);
        }
        m.put("outcomes", outcomes);
        m.put("errors", errorKinds(finished.stream().filter((r) -> r.errorKind != null).toList()));
        m.put("ttft_ms", percentiles(finished.stream().filter((r) -> r.firstToken >= 0)
                .mapToDouble((r) -> (r.firstToken - r.start) / 1e6).sorted().toArray(), 50, 90, 99));
        List<Result> misbehaved = finished.stream().filter((r) -> r.misbehavedAt >= 0).toList();
        m.put("chunks_before_mean", misbehaved.isEmpty() ? null
                : misbehaved.stream().mapToInt((r) -> r.chunksBefore).average().getAsDouble());
        if (role == Role.STALLED) {
            m.put("stall_s", percentiles(misbehaved.stream().mapToDouble((r) -> r.stallNanos / 1e9).sorted().toArray(), 50));
            m.put("stalls_shortened_by_the_end_of_the_run", misbehaved.stream().filter((r) -> r.stallShortened).count());
            m.put("chunks_after_stall", percentiles(misbehaved.stream().mapToDouble((r) -> r.chunksAfterStall).sorted()
                    .toArray(), 50));
            m.put("bytes_after_stall", percentiles(misbehaved.stream().mapToDouble((r) -> r.bytesAfterStall).sorted()
                    .toArray(), 50));
            List<Result> completed = misbehaved.stream()
                    .filter((r) -> "completed_after_stall".equals(r.outcome) && r.completionTokens != null).toList();
            m.put("completed_tokens_mean", completed.isEmpty() ? null
                    : completed.stream().mapToInt((r) -> r.completionTokens).average().getAsDouble());
        }
        return m;
    }

    /**
     * What the gateway's own counters say it generated, set against what the clients read. Every token a client read
     * was generated (a request's usage when it came, else its content chunks: at least a token each); the rest were
     * generated and never read: for requests whose clients had gone (disconnected, stalled and then cut by the
     * gateway, cut at the end of the run). Given to the disconnected requests alone, they bound from above what was
     * generated for each, against the max_tokens it asked for: a gateway that kept generating for clients that had
     * gone would make up to that much for each. And whether the gateway held nothing once every client had gone.
     */
    Map<String, Object> gatewayEvidence(List<Result> everyone, Map<String, Double> before, Map<String, Double> after,
            Map<String, Object> idle) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("before", before);
        m.put("after", after);
        m.put("idle_after_run", idle);
        Double generated = delta(before, after, "generated_tokens");
        m.put("generated_tokens", generated);
        m.put("generations", delta(before, after, "generations"));
        m.put("requests_rejected", delta(before, after, "requests_rejected"));
        m.put("requests_answered_200", everyone.stream().filter((r) -> r.status == 200).count());
        long read = everyone.stream().mapToLong(LoadTest::tokensRead).sum();
        m.put("tokens_read_by_clients", read);
        List<Result> disconnected = everyone.stream().filter((r) -> !r.cut && "disconnected".equals(r.outcome)).toList();
        long disconnectedRead = disconnected.stream().mapToLong(LoadTest::tokensRead).sum();
        m.put("disconnected_requests", disconnected.size());
        m.put("disconnected_tokens_read", disconnectedRead);
        List<Result> stalledUnfinished = everyone.stream().filter((r) -> r.role == Role.STALLED && r.misbehavedAt >= 0
                && !"completed_after_stall".equals(r.outcome)).toList();
        m.put("stalled_requests_not_read_to_the_end", stalledUnfinished.size());
        m.put("stalled_unread_tokens_at_most", stalledUnfinished.stream()
                .mapToLong((r) -> Math.max(0, stalledMaxTokens() - tokensRead(r))).sum());
        if (generated != null) {
            double neverRead = generated - read;
            m.put("tokens_never_read", neverRead);
            if (!disconnected.isEmpty()) {
                m.put("per_disconnected_request_at_most", (disconnectedRead + Math.max(0, neverRead)) / disconnected.size());
                m.put("per_disconnected_request_if_never_cancelled_up_to", (double) options.disconnectingMaxTokens);
            }
        }
        return m;
    }

    /** Tokens a client read of a request: its usage when that came, else its content chunks (a token at least each). */
    static long tokensRead(Result r) {
        return r.completionTokens != null ? r.completionTokens : r.contentChunks;
    }

    static Double delta(Map<String, Double> before, Map<String, Double> after, String key) {
        Double a = before.get(key);
        Double b = after.get(key);
        return a == null || b == null ? null : b - a;
    }

    /** Errors by kind: a count and one example message each. */
    static Map<String, Object> errorKinds(List<Result> failed) {
        Map<String, Object> errors = new TreeMap<>();
        for (Result r : failed) {
            @SuppressWarnings("unchecked")
            Map<String, Object> kind = (Map<String, Object>) errors.computeIfAbsent(r.errorKind, (k) -> {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("count", 0L);
                m.put("example", abbreviate(r.errorDetail, 300));
                return m;
            });
            kind.put("count", (Long) kind.get("count") + 1);
        }
        return errors;
    }

    /** mean(last third) / mean(middle third) of the samples taken under load; "flat" when at most the threshold. */
    Map<String, Object> flatness(List<Double> values) {
        Map<String, Object> m = new LinkedHashMap<>();
        int n = values.size();
        if (n < 3 || values.stream().anyMatch((v) -> v == null)) {
            m.put("verdict", values.stream().allMatch((v) -> v == null) ? "not measured" : "too few samples");
            return m;
        }
        double middle = values.subList(n / 3, 2 * n / 3).stream().mapToDouble(Double::doubleValue).average().orElse(Double.NaN);
        double last = values.subList(2 * n / 3, n).stream().mapToDouble(Double::doubleValue).average().orElse(Double.NaN);
        double ratio = last / middle;
        m.put("middle_third_mean", middle);
        m.put("last_third_mean", last);
        m.put("ratio", ratio);
        m.put("verdict", ratio <= options.flatThreshold ? "flat" : "growing");
        return m;
    }

    static Map<String, Object> percentiles(double[] sorted, int... ps) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("count", sorted.length);
        for (int p : ps) {
            m.put("p" + p, sorted.length == 0 ? null : sorted[Math.max(0, (int) Math.ceil(p / 100.0 * sorted.length) - 1)]);
        }
        m.put("mean", sorted.length == 0 ? null : Arrays.stream(sorted).average().getAsDouble());
        m.put("max", sorted.length == 0 ? null : sorted[sorted.length - 1]);
        return m;
    }

    @SuppressWarnings("unchecked")
    static String markdown(Map<String, Object> report) {
        Map<String, Object> settings = (Map<String, Object>) report.get("settings");
        Map<String, Object> requests = (Map<String, Object>) report.get("requests");
        Map<String, Object> errors = (Map<String, Object>) report.get("errors");
        Map<String, Object> throughput = (Map<String, Object>) report.get("throughput");
        Map<String, Object> latency = (Map<String, Object>) report.get("latency");
        Map<String, Object> memory = (Map<String, Object>) report.get("memory");
        StringBuilder md = new StringBuilder();
        md.append("# Gateway load test\n\n");
        md.append(String.format(Locale.ROOT, "%s%s, %s clients, %s s, max_tokens %s, temperature %s, started %s.%n",
                settings.get("url"), Boolean.TRUE.equals(settings.get("api_key")) ? " with an API key" : "",
                settings.get("clients"), fmt(settings.get("duration_s")), settings.get("max_tokens"),
                plain((Double) settings.get("temperature")), settings.get("started_at")));
        long stalledClients = ((Number) settings.get("stalled_clients")).longValue();
        long disconnectingClients = ((Number) settings.get("disconnecting_clients")).longValue();
        if (stalledClients + disconnectingClients > 0) {
            md.append(String.format(Locale.ROOT, "Of the clients %s are well-behaved, %d stall (stop reading after %s "
                    + "content chunks for %s s, then read what is left; max_tokens %s) and %d disconnect (close the "
                    + "connection after %s content chunks; max_tokens %s).%n", settings.get("well_behaved_clients"),
                    stalledClients, settings.get("misbehave_after_chunks"), fmt(settings.get("stall_for_s")),
                    settings.get("stalled_max_tokens"), disconnectingClients, settings.get("misbehave_after_chunks"),
                    settings.get("disconnecting_max_tokens")));
        }
        md.append("\n");
        long errorCount = ((Number) requests.get("errors")).longValue();
        md.append(stalledClients + disconnectingClients > 0 ? "| well-behaved clients | |\n|---|---|\n" : "| | |\n|---|---|\n");
        md.append("| requests | ").append(requests.get("total")).append(" (").append(requests.get("succeeded"))
                .append(" succeeded; ").append(requests.get("cut_after_grace")).append(" cut after the grace period, not counted) |\n");
        md.append("| errors (goal 0) | **").append(errorCount).append("** |\n");
        md.append("| HTTP statuses | ").append(requests.get("http_statuses")).append(" |\n");
        md.append("| finish reasons | ").append(requests.get("finish_reasons")).append(" |\n");
        md.append(String.format(Locale.ROOT, "| throughput | %s completion tokens/s (%s tokens in %s s; %s requests/s) |%n",
                fmt(throughput.get("completion_tokens_per_s")), throughput.get("completion_tokens"),
                fmt(throughput.get("wall_s")), fmt(throughput.get("requests_per_s"))));
        md.append("| mean completion tokens | ").append(fmt(throughput.get("mean_completion_tokens"))).append(" |\n");
        md.append("| answers from the response cache | ").append(requests.get("cached_answers")).append(" |\n");
        md.append("| answers without a usage chunk | ").append(requests.get("without_usage_chunk")).append(" |\n");
        md.append("| empty answers (no content) | ").append(requests.get("empty_answers")).append(" |\n");
        md.append("\n| latency (ms) | n | p50 | p90 | p99 | mean | max |\n|---|---|---|---|---|---|---|\n");
        for (String[] row : new String[][] {{"time to first token", "ttft_ms"}, {"per token after the first", "per_token_ms"},
                {"whole request", "request_ms"}}) {
            Map<String, Object> p = (Map<String, Object>) latency.get(row[1]);
            md.append("| ").append(row[0]).append(" | ").append(p.get("count"));
            for (String k : List.of("p50", "p90", "p99", "mean", "max")) {
                md.append(" | ").append(fmt(p.get(k)));
            }
            md.append(" |\n");
        }
        if (!errors.isEmpty()) {
            md.append("\n| error | count | example |\n|---|---|---|\n");
            for (Map.Entry<String, Object> e : errors.entrySet()) {
                Map<String, Object> kind = (Map<String, Object>) e.getValue();
                md.append("| ").append(e.getKey()).append(" | ").append(kind.get("count")).append(" | ")
                        .append(String.valueOf(kind.get("example")).replace("|", "\\|").replace("\n", " ")).append(" |\n");
            }
        }
        for (String group : List.of("stalled", "disconnecting")) {
            if (report.containsKey(group)) {
                md.append(misbehavingMarkdown(group, (Map<String, Object>) report.get(group)));
            }
        }
        md.append(gatewayMarkdown((Map<String, Object>) report.get("gateway")));
        md.append("\n| t (s) | heap used (MB) | non-heap (MB) | heap after GC (%) | RSS (MB) | completed | in flight | tokens/s "
                + "| batch | queue |\n");
        md.append("|---|---|---|---|---|---|---|---|---|---|\n");
        for (Object o : (List<Object>) memory.get("series")) {
            Map<String, Object> s = (Map<String, Object>) o;
            md.append("| ").append(fmt1((Double) s.get("t_s"))).append(" | ").append(fmt1((Double) s.get("heap_used_mb")))
                    .append(" | ").append(fmt1((Double) s.get("nonheap_used_mb"))).append(" | ")
                    .append(fmt2((Double) s.get("heap_after_gc_percent"))).append(" | ").append(fmt1((Double) s.get("rss_mb")))
                    .append(" | ").append(s.get("completed")).append(" | ").append(s.get("in_flight")).append(" | ")
                    .append(fmt1((Double) s.get("tokens_per_s"))).append(" | ").append(fmt(s.get("batch_size")))
                    .append(" | ").append(fmt(s.get("queue_depth"))).append(" |\n");
        }
        md.append("\nMemory under load (").append(memory.get("samples_compared"))
                .append(" samples taken while clients ran; mean of the last third / mean of the middle third, flat when <= ")
                .append(fmt(memory.get("flat_threshold"))).append("):\n");
        for (String[] which : new String[][] {{"heap", "heap used", " MB"}, {"heap_after_gc", "heap after GC", " %"},
                {"rss", "RSS", " MB"}}) {
            Map<String, Object> f = (Map<String, Object>) memory.get(which[0]);
            md.append("- ").append(which[1]).append(": **").append(f.get("verdict")).append("**");
            if (f.containsKey("ratio")) {
                md.append(String.format(Locale.ROOT, " (ratio %.3f: %s%s -> %s%s)", (Double) f.get("ratio"),
                        fmt2((Double) f.get("middle_third_mean")), which[2], fmt2((Double) f.get("last_third_mean")), which[2]));
            }
            md.append("\n");
        }
        if (((Number) requests.get("cached_answers")).longValue() > 0) {
            md.append("\nWarning: ").append(requests.get("cached_answers")).append(" answers were replayed from the gateway's "
                    + "response cache (deterministic requests are cached), so their latencies are not the model's: start the "
                    + "gateway with --specula.cache.response.enabled=false, or use --temperature > 0 (a different seed per request).\n");
        }
        md.append("\n").append(errorCount == 0 ? "Result: no errors" : "Result: " + errorCount + " requests failed")
                .append(stalledClients + disconnectingClients > 0 ? " (well-behaved clients).\n" : ".\n");
        return md.toString();
    }

    @SuppressWarnings("unchecked")
    static String misbehavingMarkdown(String group, Map<String, Object> m) {
        StringBuilder md = new StringBuilder();
        md.append("\n| ").append(group).append(" clients (").append(m.get("clients")).append(") | |\n|---|---|\n");
        md.append("| requests | ").append(m.get("requests")).append(" (").append(m.get("cut_after_grace"))
                .append(" more cut after the grace period) |\n");
        md.append("| how they ended | ").append(m.get("outcomes")).append(" |\n");
        Map<String, Object> errors = (Map<String, Object>) m.get("errors");
        if (!errors.isEmpty()) {
            StringBuilder e = new StringBuilder();
            for (Map.Entry<String, Object> kind : errors.entrySet()) {
                Map<String, Object> k = (Map<String, Object>) kind.getValue();
                e.append(e.length() > 0 ? "; " : "").append(kind.getKey()).append(" ").append(k.get("count")).append(": ")
                        .append(String.valueOf(k.get("example")).replace("|", "\\|").replace("\n", " "));
            }
            md.append("| errors (not counted in the goal) | ").append(e).append(" |\n");
        }
        Map<String, Object> ttft = (Map<String, Object>) m.get("ttft_ms");
        md.append("| time to first token (ms) | p50 ").append(fmt(ttft.get("p50"))).append(", p99 ")
                .append(fmt(ttft.get("p99"))).append(" |\n");
        md.append("| content chunks read before misbehaving (mean) | ").append(fmt(m.get("chunks_before_mean"))).append(" |\n");
        if (m.containsKey("stall_s")) {
            Map<String, Object> stall = (Map<String, Object>) m.get("stall_s");
            md.append("| stall (s) | p50 ").append(fmt(stall.get("p50"))).append(", max ").append(fmt(stall.get("max")))
                    .append("; ").append(m.get("stalls_shortened_by_the_end_of_the_run"))
                    .append(" shortened by the end of the run |\n");
            Map<String, Object> chunks = (Map<String, Object>) m.get("chunks_after_stall");
            Map<String, Object> bytes = (Map<String, Object>) m.get("bytes_after_stall");
            md.append("| read after the stall | content chunks p50 ").append(fmt(chunks.get("p50"))).append(", max ")
                    .append(fmt(chunks.get("max"))).append("; bytes p50 ").append(fmt(bytes.get("p50"))).append(", max ")
                    .append(fmt(bytes.get("max"))).append(" |\n");
            md.append("| completion tokens of the answers read to [DONE] (mean) | ")
                    .append(fmt(m.get("completed_tokens_mean"))).append(" |\n");
        }
        return md.toString();
    }

    @SuppressWarnings("unchecked")
    static String gatewayMarkdown(Map<String, Object> g) {
        StringBuilder md = new StringBuilder();
        Map<String, Object> after = (Map<String, Object>) g.get("after");
        Map<String, Object> idle = (Map<String, Object>) g.get("idle_after_run");
        md.append("\n| the gateway's counters (/actuator), over the run | |\n|---|---|\n");
        md.append("| generations (specula.generation count) | ").append(fmt(g.get("generations")))
                .append(" for ").append(g.get("requests_answered_200")).append(" requests answered 200 |\n");
        md.append("| tokens generated (specula.generated.tokens) | ").append(fmt(g.get("generated_tokens"))).append(" |\n");
        md.append("| tokens read by the clients | ").append(g.get("tokens_read_by_clients")).append(" |\n");
        md.append("| tokens generated and never read | ").append(fmt(g.get("tokens_never_read"))).append(" |\n");
        if (g.containsKey("per_disconnected_request_at_most")) {
            md.append("| tokens generated per disconnected request | at most ")
                    .append(fmt(g.get("per_disconnected_request_at_most"))).append(" (")
                    .append(g.get("disconnected_requests")).append(" requests, ").append(g.get("disconnected_tokens_read"))
                    .append(" tokens read; every unread token counted against them); up to ")
                    .append(fmt(g.get("per_disconnected_request_if_never_cancelled_up_to")))
                    .append(" if the gateway never cancelled |\n");
        }
        if (((Number) g.get("stalled_requests_not_read_to_the_end")).longValue() > 0) {
            md.append("| stalled requests not read to the end | ").append(g.get("stalled_requests_not_read_to_the_end"))
                    .append(" (at most ").append(g.get("stalled_unread_tokens_at_most"))
                    .append(" of the unread tokens are theirs) |\n");
        }
        md.append("| requests rejected (bulkhead) | ").append(fmt(g.get("requests_rejected"))).append(" |\n");
        md.append("| after the run | ").append(Boolean.TRUE.equals(idle.get("measured"))
                ? (Boolean.TRUE.equals(idle.get("idle")) ? "idle after " : "**still busy** after ")
                        + fmt(idle.get("after_s")) + " s: batch size " + fmt(after.get("batch_size")) + ", queue depth "
                        + fmt(after.get("queue_depth")) + ", KV reserved " + fmt(after.get("kv_reserved_bytes"))
                        + " bytes, generation slots free " + fmt(after.get("generation_slots_free")) + " of "
                        + fmt(after.get("generation_slots_total"))
                : "not measured (actuator not readable)").append(" |\n");
        return md.toString();
    }

    static void writeFile(Path path, String text) throws IOException {
        Path parent = path.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        Files.writeString(path, text);
        System.out.println("wrote " + path);
    }

    // ------------------------------------------------------------------------------------------ helpers

    static String fmt(Object value) {
        if (value == null) {
            return "-";
        }
        if (value instanceof Double || value instanceof Float) {
            double d = ((Number) value).doubleValue();
            if (Double.isNaN(d) || Double.isInfinite(d)) {
                return "-";
            }
            if (d == Math.rint(d) && Math.abs(d) < 1e15) {
                return String.valueOf((long) d);
            }
            return String.format(Locale.ROOT, Math.abs(d) >= 100 ? "%.1f" : Math.abs(d) >= 1 ? "%.2f" : "%.3f", d);
        }
        return String.valueOf(value);
    }

    static String fmt1(Double value) {
        return value == null ? "-" : String.format(Locale.ROOT, "%.1f", value);
    }

    static String plain(double value) {
        return java.math.BigDecimal.valueOf(value).stripTrailingZeros().toPlainString();
    }

    static String fmt2(Double value) {
        return value == null ? "-" : String.format(Locale.ROOT, "%.2f", value);
    }

    static String seconds(Duration d) {
        return fmt(d.toMillis() / 1000.0) + "s";
    }

    static String abbreviate(String s, int max) {
        if (s == null) {
            return null;
        }
        return s.length() <= max ? s : s.substring(0, max) + "...";
    }

    static void sleepQuietly(long millis) {
        try {
            Thread.sleep(millis);
        }
        catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
        }
    }

    static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> {
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    }
                    else {
                        b.append(c);
                    }
                }
            }
        }
        return b.append('"').toString();
    }

    /** JSON text of maps, lists, strings, numbers, booleans and nulls, indented. */
    static String toJson(Object value, int indent) {
        if (value == null) {
            return "null";
        }
        if (value instanceof String s) {
            return quote(s);
        }
        if (value instanceof Double || value instanceof Float) {
            double d = ((Number) value).doubleValue();
            return Double.isNaN(d) || Double.isInfinite(d) ? "null" : fmtJsonNumber(d);
        }
        if (value instanceof Number || value instanceof Boolean) {
            return value.toString();
        }
        String pad = "  ".repeat(indent + 1);
        String close = "  ".repeat(indent);
        if (value instanceof Map<?, ?> map) {
            if (map.isEmpty()) {
                return "{}";
            }
            StringBuilder b = new StringBuilder("{\n");
            int i = 0;
            for (Map.Entry<?, ?> e : map.entrySet()) {
                b.append(pad).append(quote(String.valueOf(e.getKey()))).append(": ").append(toJson(e.getValue(), indent + 1))
                        .append(++i < map.size() ? ",\n" : "\n");
            }
            return b.append(close).append('}').toString();
        }
        if (value instanceof List<?> list) {
            if (list.isEmpty()) {
                return "[]";
            }
            StringBuilder b = new StringBuilder("[\n");
            for (int i = 0; i < list.size(); i++) {
                b.append(pad).append(toJson(list.get(i), indent + 1)).append(i + 1 < list.size() ? ",\n" : "\n");
            }
            return b.append(close).append(']').toString();
        }
        return quote(value.toString());
    }

    static String fmtJsonNumber(double d) {
        if (d == Math.rint(d) && Math.abs(d) < 1e15) {
            return String.valueOf((long) d);
        }
        return String.format(Locale.ROOT, "%.4f", d).replaceAll("0+$", "").replaceAll("\\.$", "");
    }

    /** A minimal JSON reader: objects become LinkedHashMaps, arrays Lists, numbers Doubles. */
    static final class Json {
        private final String s;
        private int i;

        private Json(String s) {
            this.s = s;
        }

        static Object parse(String text) {
            Json p = new Json(text);
            p.skipSpace();
            Object v = p.value();
            p.skipSpace();
            if (p.i != text.length()) {
                throw p.error("trailing characters");
            }
            return v;
        }

        /** Follows keys (String) and indices (Integer); null when any step is missing. */
        static Object at(Object node, Object... path) {
            Object current = node;
            for (Object step : path) {
                if (step instanceof String key && current instanceof Map<?, ?> map) {
                    current = map.get(key);
                }
                else if (step instanceof Integer index && current instanceof List<?> list) {
                    current = index < list.size() ? list.get(index) : null;
                }
                else {
                    return null;
                }
            }
            return current;
        }

        static String string(Object value) {
            return value instanceof String s ? s : null;
        }

        private Object value() {
            if (i >= s.length()) {
                throw error("unexpected end");
            }
            char c = s.charAt(i);
            switch (c) {
                case '{': {
                    i++;
                    Map<String, Object> map = new LinkedHashMap<>();
                    skipSpace();
                    if (peek() == '}') {
                        i++;
                        return map;
                    }
                    while (true) {
                        skipSpace();
                        if (peek() != '"') {
                            throw error("expected a key");
                        }
                        String key = string();
                        skipSpace();
                        expect(':');
                        skipSpace();
                        map.put(key, value());
                        skipSpace();
                        if (peek() == ',') {
                            i++;
                        }
                        else {
                            expect('}');
                            return map;
                        }
                    }
                }
                case '[': {
                    i++;
                    List<Object> list = new ArrayList<>();
                    skipSpace();
                    if (peek() == ']') {
                        i++;
                        return list;
                    }
                    while (true) {
                        skipSpace();
                        list.add(value());
                        skipSpace();
                        if (peek() == ',') {
                            i++;
                        }
                        else {
                            expect(']');
                            return list;
                        }
                    }
                }
                case '"':
                    return string();
                case 't':
                    literal("true");
                    return Boolean.TRUE;
                case 'f':
                    literal("false");
                    return Boolean.FALSE;
                case 'n':
                    literal("null");
                    return null;
                default: {
                    int start = i;
                    while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) {
                        i++;
                    }
                    if (start == i) {
                        throw error("unexpected character '" + c + "'");
                    }
                    try {
                        return Double.parseDouble(s.substring(start, i));
                    }
                    catch (NumberFormatException ex) {
                        throw error("bad number");
                    }
                }
            }
        }

        private String string() {
            expect('"');
            StringBuilder b = new StringBuilder();
            while (true) {
                if (i >= s.length()) {
                    throw error("unterminated string");
                }
                char c = s.charAt(i++);
                if (c == '"') {
                    return b.toString();
                }
                if (c != '\\') {
                    b.append(c);
                    continue;
                }
                if (i >= s.length()) {
                    throw error("unterminated escape");
                }
                char e = s.charAt(i++);
                switch (e) {
                    case 'n' -> b.append('\n');
                    case 't' -> b.append('\t');
                    case 'r' -> b.append('\r');
                    case 'b' -> b.append('\b');
                    case 'f' -> b.append('\f');
                    case 'u' -> {
                        if (i + 4 > s.length()) {
                            throw error("bad \\u escape");
                        }
                        b.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                        i += 4;
                    }
                    default -> b.append(e);   // " \ /
                }
            }
        }

        private void literal(String word) {
            if (!s.startsWith(word, i)) {
                throw error("expected " + word);
            }
            i += word.length();
        }

        private char peek() {
            return i < s.length() ? s.charAt(i) : '\0';
        }

        private void expect(char c) {
            if (peek() != c) {
                throw error("expected '" + c + "'");
            }
            i++;
        }

        private void skipSpace() {
            while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
                i++;
            }
        }

        private IllegalArgumentException error(String what) {
            return new IllegalArgumentException("bad JSON at " + i + ": " + what);
        }
    }
}
