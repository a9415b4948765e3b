package dev.specula.sample;

import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.web.server.context.WebServerApplicationContext;
import org.springframework.context.ConfigurableApplicationContext;
import tools.jackson.databind.JsonNode;

import dev.specula.serving.ModelPairHandle;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Graceful shutdown on a gateway of its own, closed mid-stream: while it drains, the
 * stream in flight runs to {@code [DONE]} and a new request is answered 503
 * {@code shutting_down} with {@code Retry-After}; then the context closes.
 */
class GatewayDrainTest {

    @Test
    void aStreamInFlightFinishesWhileNewRequestsGet503() throws Exception {
        ConfigurableApplicationContext context = new SpringApplicationBuilder(SpeculaGatewayApplication.class)
            .properties("server.port=0", "server.shutdown=graceful", "specula.cache.response.enabled=false",
                    "spring.lifecycle.timeout-per-shutdown-phase=60s")
            .run();
        CompletableFuture<Void> closed = null;
        try {
            context.getBean(ModelPairHandle.class).await();
            int port = ((WebServerApplicationContext) context).getWebServer().getPort();
            GatewayHttp http = new GatewayHttp(port);
            HttpResponse<InputStream> stream = http.postStreaming("{\"messages\": [{\"role\": \"user\", "
                    + "\"content\": \"class Foo:\"}], \"max_tokens\": 600, \"stream\": true}");
            assertThat(stream.statusCode()).isEqualTo(200);
            try (BufferedReader events = new BufferedReader(
                    new InputStreamReader(stream.body(), StandardCharsets.UTF_8))) {
                assertThat(events.readLine()).startsWith("data: ");

                closed = CompletableFuture.runAsync(context::close);
                HttpResponse<String> refused = null;
                long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
                while (refused == null && System.nanoTime() < deadline) {
                    HttpResponse<String> response = http
                        .post("{\"messages\": [{\"role\": \"user\", \"content\": \"def f():\"}], \"max_tokens\": 1}");
                    if (response.statusCode() == 503) {
                        refused = response;
                    }
                    else {
                        Thread.sleep(20);
                    }
                }
                assertThat(refused).as("a 503 while draining").isNotNull();
                assertThat(refused.headers().firstValue("Retry-After")).hasValue("5");
                JsonNode error = http.json(refused).get("error");
                assertThat(error.get("type").stringValue()).isEqualTo("server_error");
                assertThat(error.get("code").stringValue()).isEqualTo("shutting_down");
                assertThat(closed).as("the context waits for the stream").isNotDone();

                String line;
                String last = null;
                int chunks = 0;
                while ((line = events.readLine()) != null) {
                    if (line.startsWith("data: ")) {
                        last = line;
                        chunks++;
                    }
                }
                assertThat(last).isEqualTo("data: [DONE]");
                assertThat(chunks).isGreaterThan(3);
            }
            closed.get(90, TimeUnit.SECONDS);
            assertThat(context.isActive()).isFalse();
        }
        finally {
            if (closed == null) {
                context.close();
            }
        }
    }

}
