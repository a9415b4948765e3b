package dev.specula.sample;

import java.net.http.HttpResponse;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import tools.jackson.databind.JsonNode;

import dev.specula.serving.ModelPairHandle;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A request whose worst-case KV (prompt + max_tokens, target and draft) exceeds
 * {@code specula.kv.max-bytes} is answered 429 with code {@code kv_capacity_exceeded},
 * before any work and before a stream starts, and the message says why; requests that fit
 * are served as usual. The embedded pair's KV is 7 KiB per token (6 KiB target, 1 KiB
 * draft): 1MB holds 146 tokens.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
        properties = { "specula.cache.response.enabled=false", "specula.kv.max-bytes=1MB" })
class GatewayKvCapacityTest {

    @LocalServerPort
    private int port;

    @Autowired
    private ModelPairHandle models;

    @Test
    void aRequestThatCanNeverFitTheKvCapIs429SayingWhy() {
        models.await();
        GatewayHttp http = new GatewayHttp(port);
        String tooLarge = "{\"messages\": [{\"role\": \"user\", \"content\": \"def add(a, b):\"}], \"max_tokens\": 1900";

        for (String body : List.of(tooLarge + "}", tooLarge + ", \"stream\": true}")) {
            HttpResponse<String> response = http.post(body);
            assertThat(response.statusCode()).isEqualTo(429);
            assertThat(response.headers().firstValue("Content-Type"))
                .hasValueSatisfying((type) -> assertThat(type).startsWith("application/json"));
            JsonNode error = http.json(response).get("error");
            assertThat(error.get("code").stringValue()).isEqualTo("kv_capacity_exceeded");
            assertThat(error.get("type").stringValue()).isEqualTo("rate_limit_error");
            assertThat(error.get("message").stringValue()).contains("specula.kv.max-bytes")
                .contains("1048576 bytes")
                .contains("max_tokens");
        }

        HttpResponse<String> fits = http
            .post("{\"messages\": [{\"role\": \"user\", \"content\": \"def add(a, b):\"}], \"max_tokens\": 8}");
        assertThat(fits.statusCode()).isEqualTo(200);
    }

}
