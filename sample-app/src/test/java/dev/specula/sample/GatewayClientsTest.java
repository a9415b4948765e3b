package dev.specula.sample;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.context.TestConfiguration;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.boot.tomcat.TomcatConnectorCustomizer;
import org.springframework.context.annotation.Bean;

import dev.specula.engine.GenerationStats;
import dev.specula.serving.GenerationService;
import dev.specula.serving.ModelPairHandle;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Clients that leave or stop reading. Closing the connection of a non-streamed request
 * stops its generation (streams: GatewayIntegrationTest). A client that stops reading its
 * stream holds up nobody else: text leaves the batch through each request's own queue and
 * thread, so other requests, streamed or not, complete while the stalled stream's writes
 * block; after the write timeout ({@code server.tomcat.connection-timeout}, 10 s here)
 * the stalled stream is cut and its generation slot freed. The server's send buffer is
 * made small (4 KB) and so is the client's receive buffer, so that the stream fills them
 * within a few hundred tokens.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
        properties = { "specula.cache.response.enabled=false", "server.tomcat.connection-timeout=10s" })
class GatewayClientsTest {

    @LocalServerPort
    private int port;

    @Autowired
    private ModelPairHandle models;

    @Autowired
    private GenerationService service;

    @TestConfiguration(proxyBeanMethods = false)
    static class SmallBuffers {

        @Bean
        TomcatConnectorCustomizer smallSendBuffer() {
            return (connector) -> connector.setProperty("socket.txBufSize", "4096");
        }

    }

    @Test
    void aStalledStreamDelaysNoOtherRequestAndIsCutAfterTheWriteTimeout() throws Exception {
        models.await();
        GatewayHttp http = new GatewayHttp(port);
        int slots = service.bulkhead().getBulkheadConfig().getMaxConcurrentCalls();
        try (Socket stalled = http.connect(2048)) {
            GatewayHttp.write(stalled, "POST", "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", "
                    + "\"content\": \"class Foo:\"}], \"max_tokens\": 1500, \"stream\": true}");
            InputStream in = stalled.getInputStream();
            assertThat(GatewayHttp.readLine(in)).contains("200");
            // from here on the client reads nothing: the server's writes fill both
            // buffers and block
            long blocked = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (freeSlots() == slots && System.nanoTime() < blocked) {
                Thread.sleep(5);
            }

            long start = System.nanoTime();
            List<CompletableFuture<HttpResponse<String>>> others = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                boolean stream = i == 2;
                others.add(CompletableFuture.supplyAsync(() -> http.post("{\"messages\": [{\"role\": \"user\", "
                        + "\"content\": \"def add(a, b):\"}], \"max_tokens\": 32" + (stream ? ", \"stream\": true" : "")
                        + "}")));
            }
            for (CompletableFuture<HttpResponse<String>> other : others) {
                HttpResponse<String> response = other.get(60, TimeUnit.SECONDS);
                assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
            }
            Duration others32 = Duration.ofNanos(System.nanoTime() - start);
            assertThat(freeSlots()).as("the stalled stream still holds its slot after %s", others32).isLessThan(slots);

            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (freeSlots() < slots && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            assertThat(freeSlots()).as("the stalled stream's slot is freed after the write timeout").isEqualTo(slots);
            String received = drain(in);
            assertThat(received).as("the stalled stream was cut, not completed")
                .contains("data: {")
                .doesNotContain("data: [DONE]");
        }
    }

    /**
     * A non-streamed answer writes nothing until it is complete, yet closing its
     * connection stops the generation too: the slot frees long before 1500 tokens.
     */
    @Test
    void closingTheConnectionOfANonStreamedRequestStopsItsGeneration() throws Exception {
        models.await();
        int maxTokens = 1500;
        int slots = service.bulkhead().getBulkheadConfig().getMaxConcurrentCalls();
        long generatedBefore = generatedTokens();
        try (java.net.Socket socket = new GatewayHttp(port).connect(0)) {
            GatewayHttp.write(socket, "POST", "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", "
                    + "\"content\": \"class Foo:\"}], \"max_tokens\": " + maxTokens + "}");
            long started = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (freeSlots() == slots && System.nanoTime() < started) {
                Thread.sleep(5);
            }
            assertThat(freeSlots()).as("the generation holds a slot").isLessThan(slots);
        }

        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (freeSlots() < slots && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertThat(freeSlots()).isEqualTo(slots);
        assertThat(generatedTokens() - generatedBefore).as("tokens generated before the cancellation stopped it")
            .isLessThan(maxTokens);
        // the connection's thread and the watch are free: the next request is answered
        assertThat(new GatewayHttp(port)
            .post("{\"messages\": [{\"role\": \"user\", \"content\": \"def f():\"}], \"max_tokens\": 4}")
            .statusCode()).isEqualTo(200);
    }

    private int freeSlots() {
        return service.bulkhead().getMetrics().getAvailableConcurrentCalls();
    }

    private long generatedTokens() {
        return service.snapshot().totalsByPolicy().values().stream().mapToLong(GenerationStats::generatedTokens).sum();
    }

    /** What the stalled client had not read, up to the end the server made. */
    private static String drain(InputStream in) throws IOException {
        ByteArrayOutputStream read = new ByteArrayOutputStream();
        byte[] buffer = new byte[8192];
        try {
            int n;
            while ((n = in.read(buffer)) >= 0) {
                read.write(buffer, 0, n);
            }
        }
        catch (SocketTimeoutException | java.net.SocketException ex) {
            // the server reset the connection: what was read is what counts
        }
        return read.toString(StandardCharsets.UTF_8);
    }

}
