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
 * No key configured: Spring Security's chain lets everything through, as the gateway
 * always did, the Actuator's writes included; an {@code Authorization} header is not
 * looked at, and no session or cookie is made. (The same properties as
 * {@link GatewayBusyTest}, so the two share one context.)
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
        properties = { "specula.cache.response.enabled=false", "specula.resilience.max-concurrent-generations=1" })
class GatewayWithoutKeysTest {

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
    void everythingIsOpenAndAnyAuthorizationHeaderIsIgnored() {
        HttpResponse<String> listed = http.get("/v1/models");
        assertThat(listed.statusCode()).isEqualTo(200);
        assertThat(listed.headers().firstValue("Set-Cookie")).isEmpty();
        assertThat(http.get("/v1/models", "Authorization", "Bearer sk-anything-0123456789").statusCode())
            .isEqualTo(200);
        assertThat(http.get("/actuator/specula").statusCode()).isEqualTo(200);
        HttpResponse<String> cleared = http.delete("/actuator/specula");
        assertThat(cleared.statusCode()).as(cleared.body()).isEqualTo(200);
    }

}
