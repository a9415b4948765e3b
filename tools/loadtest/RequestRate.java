/*
 * Requests per second and latencies of one request sent over and over by N concurrent clients: the per-request
 * cost of what runs around a generation (filters, security, JSON), with short generations or none.
 *
 *   java tools/loadtest/RequestRate.java [--url http://localhost:8080] [--api-key KEY] [--clients 16]
 *       [--duration 30s] [--warmup 5s] [--path /v1/chat/completions] [--body JSON | --get] [--label NAME]
 *
 * The body defaults to a greedy chat completion of max_tokens 8; a streamed body ("stream": true) is read to its
 * end, so its latency is the whole stream's. Every answer must be 200: any other status is counted as an error and
 * printed once. One line of results: label, requests, errors, requests/s, p50, p99 (ms). JDK 17 only.
 */

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

public class RequestRate {

    public static void main(String[] args) throws Exception {
        String url = "http://localhost:8080";
        String key = null;
        int clients = 16;
        Duration duration = Duration.ofSeconds(30);
        Duration warmup = Duration.ofSeconds(5);
        String path = "/v1/chat/completions";
        String body = "{\"messages\": [{\"role\": \"user\", \"content\": \"def add(a, b):\"}], \"max_tokens\": 8, "
                + "\"temperature\": 0}";
        String label = "run";
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--url" -> url = args[++i];
                case "--api-key" -> key = args[++i];
                case "--clients" -> clients = Integer.parseInt(args[++i]);
                case "--duration" -> duration = seconds(args[++i]);
                case "--warmup" -> warmup = seconds(args[++i]);
                case "--path" -> path = args[++i];
                case "--body" -> body = args[++i];
                case "--get" -> body = null;
                case "--label" -> label = args[++i];
                default -> {
                    System.err.println("unknown option " + args[i] + "; see the comment at the top of this file");
                    System.exit(2);
                }
            }
        }
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
        HttpRequest.Builder builder = HttpRequest.newBuilder(URI.create(url + path)).timeout(Duration.ofSeconds(120));
        if (key != null) {
            builder.header("Authorization", "Bearer " + key);
        }
        HttpRequest request = body == null ? builder.GET().build()
                : builder.header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(body))
                    .build();
        run(http, request, clients, warmup, null);
        List<Long> latencies = Collections.synchronizedList(new ArrayList<>());
        AtomicLong errors = new AtomicLong();
        long started = System.nanoTime();
        run(http, request, clients, duration, (nanos, status) -> {
            if (status == 200) {
                latencies.add(nanos);
            }
            else if (errors.getAndIncrement() == 0) {
                System.err.println("first error: HTTP " + status);
            }
        });
        double seconds = (System.nanoTime() - started) / 1e9;
        List<Long> sorted = new ArrayList<>(latencies);
        Collections.sort(sorted);
        System.out.println(String.format(Locale.ROOT, "%s requests=%d errors=%d rps=%.1f p50=%.1fms p99=%.1fms", label,
                sorted.size(), errors.get(), sorted.size() / seconds, percentile(sorted, 0.50) / 1e6,
                percentile(sorted, 0.99) / 1e6));
    }

    interface Outcome {

        void record(long nanos, int status);

    }

    /** {@code clients} threads send {@code request} one after the other until {@code duration} has passed. */
    static void run(HttpClient http, HttpRequest request, int clients, Duration duration, Outcome outcome)
            throws InterruptedException {
        long end = System.nanoTime() + duration.toNanos();
        AtomicBoolean failed = new AtomicBoolean();
        List<Thread> threads = new ArrayList<>();
        for (int c = 0; c < clients; c++) {
            Thread thread = new Thread(() -> {
                while (System.nanoTime() < end && !failed.get()) {
                    long start = System.nanoTime();
                    try {
                        int status = http.send(request, HttpResponse.BodyHandlers.ofString()).statusCode();
                        if (outcome != null) {
                            outcome.record(System.nanoTime() - start, status);
                        }
                    }
                    catch (Exception ex) {
                        System.err.println("request failed: " + ex);
                        failed.set(true);
                    }
                }
            });
            thread.start();
            threads.add(thread);
        }
        for (Thread thread : threads) {
            thread.join();
        }
    }

    static double percentile(List<Long> sorted, double p) {
        return sorted.isEmpty() ? 0 : sorted.get(Math.min(sorted.size() - 1, (int) Math.ceil(p * sorted.size()) - 1));
    }

    static Duration seconds(String value) {
        return Duration.ofSeconds(Long.parseLong(value.replaceAll("s$", "")));
    }

}
