/*
 * Load test of the Specula gateway (sample-app): N concurrent clients stream chat completions for a while,
 * then a report of errors, throughput, latencies and the gateway's memory over time.
 *
 *   java tools/loadtest/LoadTest.java [--url http://localhost:8080] [--pid PID] [--clients 64] [--duration 120s]
 *       [--max-tokens 64] [--temperature 0] [--seed 42] [--max-requests N] [--grace 30s] [--request-timeout 120s]
 *       [--sample-interval 5s] [--wait-ready 120s] [--flat-threshold 1.10] [--out report.json] [--markdown report.md]
 *
 * A single file, JDK 17 only (java.net.http and a small hand-written JSON reader). It starts nothing: the
 * gateway must be running. Exit code 0 = no request failed, 1 = at least one failed, 2 = bad arguments or the
 * gateway never became ready. See sample-app/README.md, "Load test".
 */

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.ConnectException;
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
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReferenceArray;

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
        Long pid;
        int clients = 64;
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
            "  --pid PID               the gateway JVM's pid, to sample its RSS from /proc/PID/status",
            "  --clients N             concurrent clients (default 64)",
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
            "exit code: 0 no request failed, 1 some failed, 2 bad arguments / gateway not ready");

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
                case "--pid" -> o.pid = positiveLong(arg, value);
                case "--clients" -> o.clients = (int) positiveLong(arg, value);
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
        return o;
    }

    static long positiveLong(String name, String value) {
        long v;
        try {
            v = Long.parseLong(value.trim());
        }
        catch (NumberFormatException ex) {
            throw new IllegalArgumentException(name + ": not an integer: " + value);
        }
        if (v < 1) {
            throw new IllegalArgumentException(name + " must be >= 1 but was " + value);
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

    /** One request's outcome. Times are System.nanoTime(). */
    static final class Result {
        long index;
        int client;
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

        int tokens() {
            return completionTokens != null ? completionTokens : contentChunks;
        }
    }

    /** What the watchdog and the end of the run need to stop a request in flight. */
    static final class InFlight {
        final long start = System.nanoTime();
        volatile CompletableFuture<HttpResponse<InputStream>> future;
        volatile InputStream body;
        volatile boolean cut;
        volatile boolean timedOut;

        void abort() {
            CompletableFuture<HttpResponse<InputStream>> f = future;
            if (f != null) {
                f.cancel(true);
            }
            InputStream in = body;
            if (in != null) {
                try {
                    in.close();
                }
                catch (IOException ignored) {
                    // closing is all we want
                }
            }
        }
    }

    /**
     * One sampling point. {@code heapAfterGcPercent}: Micrometer's jvm.memory.usage.after.gc, the long-lived heap pool
     * (G1 Old Gen, ...) used after the last collection, in percent of its maximum; it grows only with data that
     * survives collections. {@code underLoad}: taken while clients were still starting requests.
     */
    record Sample(double seconds, boolean underLoad, Double heapMb, Double nonHeapMb, Double heapAfterGcPercent,
            Double rssMb, long completed, long errors, int inFlight, double tokensPerSecond) {
    }

    final Options options;
    final HttpClient http;
    final List<Result> results = Collections.synchronizedList(new ArrayList<>());
    final AtomicReferenceArray<InFlight> inFlight;
    final AtomicLong issued = new AtomicLong();
    final AtomicLong completedCount = new AtomicLong();
    final AtomicLong errorCount = new AtomicLong();
    final AtomicLong completedTokens = new AtomicLong();
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
        String rssSource = o.pid != null ? "/proc/" + o.pid + "/status VmRSS" : rssMetricName() != null
                ? "/actuator/metrics/" + rssMetricName() : null;
        System.out.printf(Locale.ROOT, "loadtest: %s, %d clients, %s%s, max_tokens %d, temperature %s, RSS from %s%n",
                o.url, o.clients, seconds(o.duration), o.maxRequests != null ? " or " + o.maxRequests + " requests" : "",
                o.maxTokens, plain(o.temperature), rssSource != null ? rssSource : "nowhere (pass --pid)");

        List<Sample> samples = new ArrayList<>();
        runStart = System.nanoTime();
        samples.add(sample(0, false, 0, 0));
        List<Thread> threads = new ArrayList<>();
        for (int c = 0; c < o.clients; c++) {
            int client = c;
            Thread t = new Thread(() -> clientLoop(client), "client-" + c);
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
        Map<String, Object> report = report(samples, end, rssSource);
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
            InFlight f = new InFlight();
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

    void watchdog() {
        long limit = options.requestTimeout.toNanos();
        while (true) {
            long now = System.nanoTime();
            for (int c = 0; c < inFlight.length(); c++) {
                InFlight f = inFlight.get(c);
                if (f != null && !f.timedOut && now - f.start > limit) {
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

    /** One streamed chat completion, read to its end. Never throws. */
    Result request(int client, long index, InFlight f) {
        Result r = new Result();
        r.index = index;
        r.client = client;
        r.prompt = (int) (index % PROMPTS.size());
        StringBuilder body = new StringBuilder();
        body.append("{\"messages\": [{\"role\": \"user\", \"content\": ").append(quote(PROMPTS.get(r.prompt)))
                .append("}], \"max_tokens\": ").append(options.maxTokens)
                .append(", \"temperature\": ").append(plain(options.temperature));
        if (options.temperature > 0) {
            body.append(", \"seed\": ").append(options.seed + index);
        }
        body.append(", \"stream\": true, \"stream_options\": {\"include_usage\": true}}");
        // Accept JSON too: errors before the first chunk are JSON bodies, and with "Accept: text/event-stream" alone
        // the gateway cannot write them (HttpMediaTypeNotAcceptableException: a bare 500 instead of the 400/429/503).
        HttpRequest request = HttpRequest.newBuilder(URI.create(options.url + "/v1/chat/completions"))
                .timeout(options.requestTimeout)
                .header("Content-Type", "application/json").header("Accept", "text/event-stream, application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body.toString())).build();
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
                    String text = new String(in.readNBytes(8192), StandardCharsets.UTF_8);
                    r.end = System.nanoTime();
                    String code = null;
                    String message = text;
                    try {
                        Object error = Json.at(Json.parse(text), "error");
                        code = Json.string(Json.at(error, "code"));
                        message = Json.string(Json.at(error, "message"));
                    }
                    catch (RuntimeException notJson) {
                        // keep the raw text
                    }
                    r.errorKind = "http_" + r.status + (code != null ? "_" + code : "");
                    r.errorDetail = message;
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
            if (!line.startsWith("data:")) {
                continue;   // blank separators, comments, other fields
            }
            String data = line.substring(5).trim();
            long now = System.nanoTime();
            if (data.equals("[DONE]")) {
                r.done = true;
                r.end = now;
                continue;   // read on to the end of the response so the connection can be reused
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
                continue;
            }
            Object error = Json.at(event, "error");
            if (error != null) {
                if (r.errorKind == null) {
                    r.errorKind = "error_event";
                    r.errorDetail = Json.string(Json.at(error, "message"));
                }
                continue;
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
    }

    /** Until a small non-streamed request is answered 200 (the models load in the background: 503 until then). */
    String waitUntilReady() throws InterruptedException {
        long deadline = System.nanoTime() + options.waitReady.toNanos();
        String last = null;
        boolean told = false;
        do {
            try {
                HttpRequest request = HttpRequest.newBuilder(URI.create(options.url + "/v1/chat/completions"))
                        .timeout(Duration.ofSeconds(60)).header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString(
                                "{\"messages\": [{\"role\": \"user\", \"content\": \"def ready():\"}], \"max_tokens\": 1}"))
                        .build();
                HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
                if (response.statusCode() == 200) {
                    return null;
                }
                last = "HTTP " + response.statusCode() + ": " + abbreviate(response.body(), 300);
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
                tokensPerSecond);
    }

    /** measurements[0].value of /actuator/metrics/NAME[?tag=TAG], or null. */
    Double metric(String name, String tag) {
        try {
            HttpRequest request = HttpRequest.newBuilder(URI.create(options.url + "/actuator/metrics/" + name
                    + (tag != null ? "?tag=" + tag : ""))).timeout(Duration.ofSeconds(3)).GET().build();
            HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
            if (response.statusCode() != 200) {
                return null;
            }
            Object value = Json.at(Json.parse(response.body()), "measurements", 0, "value");
            return value instanceof Number n ? n.doubleValue() : null;
        }
        catch (IOException | RuntimeException ex) {
            return null;
        }
        catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
            return null;
        }
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
        System.out.printf(Locale.ROOT, "t=%6.1fs  done %5d (+%d)  in flight %2d  errors %d  %7.1f tok/s  heap %s MB  RSS %s MB%n",
                s.seconds(), s.completed(), completedInInterval, s.inFlight(), s.errors(), s.tokensPerSecond(),
                fmt1(s.heapMb()), fmt1(s.rssMb()));
    }

    // ------------------------------------------------------------------------------------------ the report

    Map<String, Object> report(List<Sample> samples, long end, String rssSource) {
        List<Result> all;
        synchronized (results) {
            all = new ArrayList<>(results);
        }
        all.sort((a, b) -> Long.compare(a.index, b.index));
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
        settings.put("clients", options.clients);
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
        report.put("errors", errors);

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
        md.append(String.format(Locale.ROOT, "%s, %s clients, %s s, max_tokens %s, temperature %s, started %s.%n%n",
                settings.get("url"), settings.get("clients"), fmt(settings.get("duration_s")), settings.get("max_tokens"),
                plain((Double) settings.get("temperature")), settings.get("started_at")));
        long errorCount = ((Number) requests.get("errors")).longValue();
        md.append("| | |\n|---|---|\n");
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
        md.append("\n| t (s) | heap used (MB) | non-heap (MB) | heap after GC (%) | RSS (MB) | completed | in flight | tokens/s |\n");
        md.append("|---|---|---|---|---|---|---|---|\n");
        for (Object o : (List<Object>) memory.get("series")) {
            Map<String, Object> s = (Map<String, Object>) o;
            md.append("| ").append(fmt1((Double) s.get("t_s"))).append(" | ").append(fmt1((Double) s.get("heap_used_mb")))
                    .append(" | ").append(fmt1((Double) s.get("nonheap_used_mb"))).append(" | ")
                    .append(fmt2((Double) s.get("heap_after_gc_percent"))).append(" | ").append(fmt1((Double) s.get("rss_mb")))
                    .append(" | ").append(s.get("completed")).append(" | ").append(s.get("in_flight")).append(" | ")
                    .append(fmt1((Double) s.get("tokens_per_s"))).append(" |\n");
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
        md.append("\n").append(errorCount == 0 ? "Result: no errors.\n" : "Result: " + errorCount + " requests failed.\n");
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
