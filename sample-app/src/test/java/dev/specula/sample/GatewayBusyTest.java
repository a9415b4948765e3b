package dev.specula.sample;

import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;

import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;

import dev.specula.serving.GenerationService;
import dev.specula.serving.ModelPairHandle;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A real full bulkhead, no stand-in: with one generation slot, a request arriving while a
 * long stream holds it is answered 429 in OpenAI's shape; once the stream is closed the
 * slot frees and requests succeed again.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
        properties = { "specula.cache.response.enabled=false", "specula.resilience.max-concurrent-generations=1" })
class GatewayBusyTest {

    @LocalServerPort
    private int port;

    @Autowired
    private ModelPairHandle models;

    @Autowired
    private GenerationService service;

    @Test
    void aRequestBeyondTheBulkheadGets429AndTheSlotComesBack() throws Exception {
        models.await();
        GatewayHttp http = new GatewayHttp(port);
        // 1900 tokens: the stream holds the only slot for seconds
        HttpResponse<InputStream> stream = http.postStreaming("{\"messages\": [{\"role\": \"user\", \"content\": "
                + "\"class Foo:\"}], \"max_tokens\": 1900, \"stream\": true}");
        assertThat(stream.statusCode()).isEqualTo(200);
        try (BufferedReader reader = new BufferedReader(new InputStreamReader(stream.body(), StandardCharsets.UTF_8))) {
            String firstEvent = reader.readLine();
            assertThat(firstEvent).startsWith("data: ");
            assertThat(service.bulkhead().getMetrics().getAvailableConcurrentCalls()).isZero();

            HttpResponse<String> busy = http.post(
                    "{\"messages\": [{\"role\": \"user\", \"content\": \"def add(a, b):\"}], " + "\"max_tokens\": 8}");

            assertThat(busy.statusCode()).isEqualTo(429);
            assertThat(busy.headers().firstValue("Retry-After")).isPresent();
            assertThat(http.json(busy).at("/error/type").stringValue()).isEqualTo("rate_limit_error");
            assertThat(http.json(busy).at("/error/code").stringValue()).isEqualTo("busy");
        }
        // closing the stream cancels its generation and frees the slot
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (service.bulkhead().getMetrics().getAvailableConcurrentCalls() == 0 && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        HttpResponse<String> after = http
            .post("{\"messages\": [{\"role\": \"user\", \"content\": \"def add(a, b):\"}], " + "\"max_tokens\": 8}");
        assertThat(after.statusCode()).isEqualTo(200);
    }

}
