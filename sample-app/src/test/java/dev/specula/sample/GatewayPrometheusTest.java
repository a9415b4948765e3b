package dev.specula.sample;

import java.net.http.HttpResponse;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import tools.jackson.databind.JsonNode;

import dev.specula.serving.ModelPairHandle;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code /actuator/prometheus} on the embedded pair: after chat completions that
 * speculated, the speculation counters (vLLM's names, {@code specula_} prefix) moved by
 * exactly what the answers report, and the load gauges, fallbacks and latency histograms
 * are there. The same application context as {@link GatewayIntegrationTest}.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
        properties = { "specula.cache.response.enabled=false", "specula.chat.options.max-tokens=64",
                "specula.resilience.goodput.enabled=false" })
class GatewayPrometheusTest {

    /** A sample line: name, optional labels, value. */
    private static final Pattern SAMPLE = Pattern.compile("^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{[^}]*\\})? (\\S+)$");

    private static final String DRAFTS = "specula_spec_decode_num_drafts_total";

    private static final String DRAFT_TOKENS = "specula_spec_decode_num_draft_tokens_total";

    private static final String ACCEPTED_TOKENS = "specula_spec_decode_num_accepted_tokens_total";

    private static final String PER_POSITION = "specula_spec_decode_num_accepted_tokens_per_pos_total";

    @LocalServerPort
    private int port;

    @Autowired
    private ModelPairHandle models;

    private GatewayHttp http;

    @BeforeEach
    void setUp() {
        models.await();
        http = new GatewayHttp(port);
    }

    @Test
    void speculationCountersMoveByWhatTheAnswersReport() {
        Map<String, Double> before = scrape();
        long drafted = 0;
        long accepted = 0;
        // a goodput probe may serve a request plainly: ask until one speculated
        for (int attempt = 0; attempt < 5 && drafted == 0; attempt++) {
            JsonNode answer = http.json(http.post("""
                    {"messages": [{"role": "user", "content": "def fibonacci(n):"}], "max_tokens": 32,
                     "speculation": {"policy": "fixed", "gamma": 4, "proposer": "model"}}"""));
            drafted += answer.at("/speculation/drafted").longValue();
            accepted += answer.at("/speculation/accepted").longValue();
        }
        Map<String, Double> after = scrape();

        assertThat(drafted).as("a request speculated").isPositive();
        assertThat(after.get(DRAFT_TOKENS) - before.getOrDefault(DRAFT_TOKENS, 0.0)).isEqualTo(drafted);
        assertThat(after.get(ACCEPTED_TOKENS) - before.getOrDefault(ACCEPTED_TOKENS, 0.0)).isEqualTo(accepted);
        double drafts = after.get(DRAFTS) - before.getOrDefault(DRAFTS, 0.0);
        assertThat(drafts).as("rounds that drafted").isBetween(1.0, (double) drafted);
        double perPosition = 0;
        for (int position = 0; after.containsKey(PER_POSITION + "{position=\"" + position + "\"}"); position++) {
            String key = PER_POSITION + "{position=\"" + position + "\"}";
            perPosition += after.get(key) - before.getOrDefault(key, 0.0);
        }
        assertThat(perPosition).as("the positions add up to the accepted tokens").isEqualTo(accepted);
        // on the embedded pair the draft is good: most drafts are accepted in part
        assertThat(after.get(DRAFT_TOKENS)).isGreaterThanOrEqualTo(after.get(ACCEPTED_TOKENS));
        assertThat(after.get(ACCEPTED_TOKENS)).isPositive();
    }

    @Test
    void loadFallbacksAndLatencyHistogramsAreExposed() {
        http.post("{\"messages\": [{\"role\": \"user\", \"content\": \"import os\"}], \"max_tokens\": 8}");

        Map<String, Double> metrics = scrape();

        assertThat(metrics).containsKeys("specula_queue_depth", "specula_batch_size", "specula_batch_steps_total",
                "specula_batch_sequences_total", "specula_fallbacks_total{reason=\"goodput\"}",
                "specula_fallbacks_total{reason=\"draft-error\"}", "specula_fallbacks_total{reason=\"timeout\"}");
        // and the other series docs/grafana-dashboard.json reads
        assertThat(metrics).containsKeys("specula_requests_rejected_total", "specula_kv_reserved_bytes",
                "specula_kv_max_bytes", "specula_prefix_bytes");
        assertThat(metrics.keySet())
            .anySatisfy((name) -> assertThat(name).startsWith("specula_generated_tokens_total{policy="));
        assertThat(metrics.get("specula_batch_steps_total")).isPositive();
        assertThat(metrics.get("specula_batch_sequences_total"))
            .isGreaterThanOrEqualTo(metrics.get("specula_batch_steps_total"));
        assertThat(metrics.keySet())
            .anySatisfy((name) -> assertThat(name).startsWith("http_server_requests_seconds_bucket{")
                .contains("uri=\"/v1/chat/completions\""));
        assertThat(metrics.keySet())
            .anySatisfy((name) -> assertThat(name).startsWith("specula_generation_seconds_bucket{"));
    }

    /**
     * The samples of {@code /actuator/prometheus}, by name with labels as written (e.g.
     * {@code name{position="0"}}).
     */
    private Map<String, Double> scrape() {
        HttpResponse<String> response = http.get("/actuator/prometheus");
        assertThat(response.statusCode()).isEqualTo(200);
        Map<String, Double> samples = new HashMap<>();
        for (String line : response.body().split("\n")) {
            Matcher sample = SAMPLE.matcher(line);
            if (!line.startsWith("#") && sample.matches()) {
                String labels = sample.group(2) == null ? "" : sample.group(2);
                samples.put(sample.group(1) + labels, Double.parseDouble(sample.group(3)));
            }
        }
        return samples;
    }

}
