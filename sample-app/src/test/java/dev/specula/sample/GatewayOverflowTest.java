package dev.specula.sample;

import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.web.server.context.WebServerApplicationContext;
import org.springframework.context.ConfigurableApplicationContext;
import tools.jackson.databind.JsonNode;

import dev.specula.serving.GenerationService;
import dev.specula.serving.ModelPairHandle;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Overflow over real HTTP between two gateways in one JVM: a "remote" gateway serving
 * {@value #REMOTE_MODEL} on a random port, and a local one with one generation slot whose
 * {@code specula.overflow.base-url} points at the remote. The remote is shut down by the
 * last test, so the order matters.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class GatewayOverflowTest {

    private static final String REMOTE_MODEL = "remote-tiny";

    private static final String COMPLETIONS = "/v1/completions";

    private static ConfigurableApplicationContext remote;

    private static ConfigurableApplicationContext local;

    private static GatewayHttp http;

    @BeforeAll
    static void startBothGateways() {
        remote = new SpringApplicationBuilder(SpeculaGatewayApplication.class).run("--server.port=0",
                "--specula.model-name=" + REMOTE_MODEL, "--specula.load-mode=eager",
                "--specula.cache.response.enabled=false");
        int remotePort = ((WebServerApplicationContext) remote).getWebServer().getPort();
        local = new SpringApplicationBuilder(SpeculaGatewayApplication.class).run("--server.port=0",
                "--specula.load-mode=eager", "--specula.cache.response.enabled=false",
                "--specula.resilience.max-concurrent-generations=1", "--specula.overflow.enabled=true",
                "--specula.overflow.base-url=http://localhost:" + remotePort + "/v1",
                "--specula.overflow.model=" + REMOTE_MODEL, "--specula.overflow.circuit-breaker.sliding-window-size=4",
                "--specula.overflow.circuit-breaker.minimum-number-of-calls=4",
                "--specula.overflow.circuit-breaker.wait-duration-in-open-state=5m");
        local.getBean(ModelPairHandle.class).await();
        http = new GatewayHttp(((WebServerApplicationContext) local).getWebServer().getPort());
    }

    @AfterAll
    static void stopBothGateways() {
        if (local != null) {
            local.close();
        }
        if (remote != null && remote.isActive()) {
            remote.close();
        }
    }

    @Test
    @Order(1)
    void twentyConcurrentRequestsOverOneLocalSlotAllSucceedOnBothBackends() throws Exception {
        ExecutorService clients = Executors.newFixedThreadPool(20);
        try {
            List<Future<HttpResponse<String>>> answers = new ArrayList<>();
            for (int i = 0; i < 20; i++) {
                answers.add(clients.submit(() -> http.post(
                        "{\"messages\": [{\"role\": \"user\", \"content\": \"def add(a, b):\"}], \"max_tokens\": 24}")));
            }
            int local = 0;
            int overflow = 0;
            for (Future<HttpResponse<String>> answer : answers) {
                HttpResponse<String> response = answer.get();
                assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
                String backend = response.headers().firstValue("X-Specula-Backend").orElseThrow();
                JsonNode body = http.json(response);
                assertThat(body.at("/speculation/backend").stringValue()).isEqualTo(backend);
                assertThat(body.at("/choices/0/message/content").stringValue()).isNotEmpty();
                if (backend.equals("local")) {
                    local++;
                    assertThat(body.at("/model").stringValue()).isEqualTo("specula-tiny");
                }
                else {
                    assertThat(backend).isEqualTo("overflow");
                    assertThat(body.at("/model").stringValue()).isEqualTo(REMOTE_MODEL);
                    assertThat(body.at("/usage/completion_tokens").intValue()).isPositive();
                    overflow++;
                }
            }
            assertThat(local).isPositive();
            assertThat(overflow).isPositive();
            assertThat(local + overflow).isEqualTo(20);
        }
        finally {
            clients.shutdownNow();
        }
    }

    @Test
    @Order(1)
    void tenConcurrentCompletionsOverOneLocalSlotAllSucceedOnBothBackends() throws Exception {
        ExecutorService clients = Executors.newFixedThreadPool(10);
        try {
            List<Future<HttpResponse<String>>> answers = new ArrayList<>();
            for (int i = 0; i < 10; i++) {
                answers.add(clients
                    .submit(() -> http.postTo(COMPLETIONS, "{\"prompt\": \"def add(a, b):\", \"max_tokens\": 24}")));
            }
            int local = 0;
            int overflow = 0;
            for (Future<HttpResponse<String>> answer : answers) {
                HttpResponse<String> response = answer.get();
                assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
                String backend = response.headers().firstValue("X-Specula-Backend").orElseThrow();
                JsonNode body = http.json(response);
                assertThat(body.at("/object").stringValue()).isEqualTo("text_completion");
                assertThat(body.at("/choices/0/text").stringValue()).isNotEmpty();
                if (backend.equals("local")) {
                    local++;
                    assertThat(body.at("/model").stringValue()).isEqualTo("specula-tiny");
                }
                else {
                    assertThat(backend).isEqualTo("overflow");
                    assertThat(body.at("/model").stringValue()).isEqualTo(REMOTE_MODEL);
                    assertThat(body.at("/speculation/backend").stringValue()).isEqualTo("overflow");
                    assertThat(body.at("/usage/completion_tokens").intValue()).isPositive();
                    overflow++;
                }
            }
            assertThat(local).isPositive();
            assertThat(overflow).isPositive();
        }
        finally {
            clients.shutdownNow();
        }
    }

    @Test
    @Order(2)
    void aCompletionNamingTheRemoteModelGoesRemoteStreamedOrNot() {
        String body = "{\"model\": \"" + REMOTE_MODEL + "\", \"prompt\": \"class Foo:\", \"max_tokens\": 12";
        HttpResponse<String> whole = http.postTo(COMPLETIONS, body + ", \"echo\": true}");
        assertThat(whole.statusCode()).as(whole.body()).isEqualTo(200);
        assertThat(whole.headers().firstValue("X-Specula-Backend")).hasValue("overflow");
        JsonNode answer = http.json(whole);
        assertThat(answer.at("/model").stringValue()).isEqualTo(REMOTE_MODEL);
        assertThat(answer.at("/speculation/backend").stringValue()).isEqualTo("overflow");
        // echo travels: the remote puts the prompt first
        assertThat(answer.at("/choices/0/text").stringValue()).startsWith("class Foo:");

        HttpResponse<String> streamed = http.postTo(COMPLETIONS,
                body + ", \"stream\": true, \"stream_options\": {\"include_usage\": true}}");
        assertThat(streamed.statusCode()).as(streamed.body()).isEqualTo(200);
        assertThat(streamed.headers().firstValue("X-Specula-Backend")).hasValue("overflow");
        List<JsonNode> events = http.events(streamed);
        StringBuilder text = new StringBuilder();
        events.forEach((event) -> text.append(event.at("/choices/0/text").asString("")));
        assertThat(text).isNotEmpty();
        assertThat(events).allSatisfy((event) -> assertThat(event.at("/model").stringValue()).isEqualTo(REMOTE_MODEL));
        JsonNode finish = events.stream()
            .filter((event) -> event.at("/choices/0/finish_reason").isString())
            .findFirst()
            .orElseThrow();
        assertThat(finish.at("/speculation/backend").stringValue()).isEqualTo("overflow");
        assertThat(events.get(events.size() - 1).at("/usage/completion_tokens").intValue()).isPositive();

        // the remote has no fill-in-the-middle tokens: its refusal, naming the field,
        // comes back
        HttpResponse<String> suffix = http.postTo(COMPLETIONS, body + ", \"suffix\": \"return x\"}");
        assertThat(suffix.statusCode()).as(suffix.body()).isEqualTo(400);
        assertThat(http.json(suffix).at("/error/param").stringValue()).isEqualTo("suffix");
        assertThat(http.json(suffix).at("/error/message").stringValue())
            .startsWith("The overflow model '" + REMOTE_MODEL + "' refused the request: suffix asks for");
        // the remote answered: the breaker does not count it against it
        assertThat(local.getBean(ChatOverflow.class).breaker().getMetrics().getNumberOfFailedCalls()).isZero();

        HttpResponse<String> localAnswer = http.postTo(COMPLETIONS, "{\"prompt\": \"class Foo:\", \"max_tokens\": 12}");
        assertThat(localAnswer.statusCode()).as(localAnswer.body()).isEqualTo(200);
        assertThat(localAnswer.headers().firstValue("X-Specula-Backend")).hasValue("local");
    }

    @Test
    @Order(2)
    void aRequestNamingTheRemoteModelGoesRemoteStreamedOrNot() {
        HttpResponse<String> whole = http.post("{\"model\": \"" + REMOTE_MODEL
                + "\", \"messages\": [{\"role\": \"user\", \"content\": \"class Foo:\"}], \"max_tokens\": 12}");
        assertThat(whole.statusCode()).as(whole.body()).isEqualTo(200);
        assertThat(whole.headers().firstValue("X-Specula-Backend")).hasValue("overflow");
        assertThat(http.json(whole).at("/model").stringValue()).isEqualTo(REMOTE_MODEL);
        assertThat(http.json(whole).at("/speculation/backend").stringValue()).isEqualTo("overflow");

        HttpResponse<String> streamed = http.post("{\"model\": \"" + REMOTE_MODEL
                + "\", \"messages\": [{\"role\": \"user\", \"content\": \"class Foo:\"}], \"max_tokens\": 12, "
                + "\"stream\": true, \"stream_options\": {\"include_usage\": true}}");
        assertThat(streamed.statusCode()).as(streamed.body()).isEqualTo(200);
        assertThat(streamed.headers().firstValue("X-Specula-Backend")).hasValue("overflow");
        List<JsonNode> events = http.events(streamed);
        StringBuilder text = new StringBuilder();
        events.forEach((event) -> text.append(event.at("/choices/0/delta/content").asString("")));
        assertThat(text).isNotEmpty();
        assertThat(events).allSatisfy((event) -> assertThat(event.at("/model").stringValue()).isEqualTo(REMOTE_MODEL));
        JsonNode finish = events.stream()
            .filter((event) -> event.at("/choices/0/finish_reason").isString())
            .findFirst()
            .orElseThrow();
        assertThat(finish.at("/speculation/backend").stringValue()).isEqualTo("overflow");
        assertThat(events.get(events.size() - 1).at("/usage/completion_tokens").intValue()).isPositive();

        HttpResponse<String> localStream = http.post("{\"messages\": [{\"role\": \"user\", \"content\": "
                + "\"class Foo:\"}], \"max_tokens\": 12, \"stream\": true}");
        assertThat(localStream.statusCode()).as(localStream.body()).isEqualTo(200);
        assertThat(localStream.headers().firstValue("X-Specula-Backend")).hasValue("local");
        JsonNode localFinish = http.events(localStream)
            .stream()
            .filter((event) -> event.at("/choices/0/finish_reason").isString())
            .findFirst()
            .orElseThrow();
        assertThat(localFinish.at("/speculation/backend").stringValue()).isEqualTo("local");
    }

    @Test
    @Order(3)
    void aDeadRemoteOpensTheBreakerAndLocal429sComeBack() throws Exception {
        remote.close();
        CircuitBreaker breaker = local.getBean(ChatOverflow.class).breaker();
        GenerationService service = local.getBean(GenerationService.class);
        // 1900 tokens: the stream holds the only local slot for seconds
        HttpResponse<InputStream> stream = http.postStreaming("{\"messages\": [{\"role\": \"user\", \"content\": "
                + "\"class Foo:\"}], \"max_tokens\": 1900, \"stream\": true}");
        assertThat(stream.statusCode()).isEqualTo(200);
        assertThat(stream.headers().firstValue("X-Specula-Backend")).hasValue("local");
        try (BufferedReader reader = new BufferedReader(new InputStreamReader(stream.body(), StandardCharsets.UTF_8))) {
            assertThat(reader.readLine()).startsWith("data: ");
            assertThat(service.bulkhead().getMetrics().getAvailableConcurrentCalls()).isZero();
            for (int i = 0; i < 6; i++) {
                HttpResponse<String> busy = http
                    .post("{\"messages\": [{\"role\": \"user\", \"content\": \"def add(a, b):\"}], \"max_tokens\": 8}");
                assertThat(busy.statusCode()).as(busy.body()).isEqualTo(429);
                assertThat(busy.headers().firstValue("Retry-After")).isPresent();
                assertThat(http.json(busy).at("/error/code").stringValue()).isEqualTo("busy");
            }
            assertThat(breaker.getState()).isEqualTo(CircuitBreaker.State.OPEN);
            assertThat(breaker.getMetrics().getNumberOfNotPermittedCalls()).isPositive();
            // completions share the breaker: the local refusal at once
            HttpResponse<String> busyCompletion = http.postTo(COMPLETIONS,
                    "{\"prompt\": \"def add(a, b):\", \"max_tokens\": 8}");
            assertThat(busyCompletion.statusCode()).as(busyCompletion.body()).isEqualTo(429);
            assertThat(http.json(busyCompletion).at("/error/code").stringValue()).isEqualTo("busy");
            HttpResponse<String> remoteCompletion = http.postTo(COMPLETIONS,
                    "{\"model\": \"" + REMOTE_MODEL + "\", \"prompt\": \"x\", \"max_tokens\": 4}");
            assertThat(remoteCompletion.statusCode()).as(remoteCompletion.body()).isEqualTo(503);
            assertThat(http.json(remoteCompletion).at("/error/code").stringValue()).isEqualTo("overflow_unavailable");

            HttpResponse<String> remoteOnly = http.post("{\"model\": \"" + REMOTE_MODEL
                    + "\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"max_tokens\": 4}");
            assertThat(remoteOnly.statusCode()).as(remoteOnly.body()).isEqualTo(503);
            assertThat(http.json(remoteOnly).at("/error/code").stringValue()).isEqualTo("overflow_unavailable");
        }
    }

}
