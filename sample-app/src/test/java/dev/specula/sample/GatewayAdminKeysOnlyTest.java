package dev.specula.sample;

import java.net.http.HttpResponse;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;

import dev.specula.serving.ModelPairHandle;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Only {@code admin-api-keys} set: keys are required all the same (an admin key is an API
 * key too), and the admin key opens both the API and the Actuator's writes; a streamed
 * answer, dispatched asynchronously, passes the security chain.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
        properties = { "specula.cache.response.enabled=false",
                "specula.gateway.admin-api-keys=" + GatewayAdminKeysOnlyTest.ADMIN_KEY })
class GatewayAdminKeysOnlyTest {

    static final String ADMIN_KEY = "sk-admin-only-0123456789abcdef";

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
    void anAdminKeyIsRequiredAndOpensTheApiAndTheActuatorWrites() {
        assertThat(http.get("/v1/models").statusCode()).isEqualTo(401);
        assertThat(http.delete("/actuator/specula").statusCode()).isEqualTo(401);
        assertThat(http.get("/actuator/health").statusCode()).isEqualTo(200);

        String key = "Bearer " + ADMIN_KEY;
        assertThat(http.get("/v1/models", "Authorization", key).statusCode()).isEqualTo(200);
        HttpResponse<String> streamed = http.post(
                "{\"messages\": [{\"role\": \"user\", \"content\": \"def f():\"}], \"max_tokens\": 4, \"stream\": true}",
                "Authorization", key);
        assertThat(streamed.statusCode()).as(streamed.body()).isEqualTo(200);
        assertThat(streamed.body()).contains("data: [DONE]");
        HttpResponse<String> cleared = http.delete("/actuator/specula", "Authorization", key);
        assertThat(cleared.statusCode()).as(cleared.body()).isEqualTo(200);
    }

}
