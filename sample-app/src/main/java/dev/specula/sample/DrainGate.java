package dev.specula.sample;

import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import jakarta.servlet.AsyncEvent;
import jakarta.servlet.AsyncListener;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.web.server.context.WebServerApplicationContext;
import org.springframework.context.SmartLifecycle;
import org.springframework.core.Ordered;
import org.springframework.core.annotation.Order;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.stereotype.Component;
import org.springframework.web.filter.OncePerRequestFilter;
import tools.jackson.databind.ObjectMapper;

/**
 * Drains the gateway when the application stops: requests in flight, streams included,
 * run to their end, while new ones are answered 503 {@code shutting_down} in OpenAI's
 * shape with {@code Retry-After} and {@code Connection: close} (health stays readable,
 * and reports the readiness Spring Boot sets to refusing traffic).
 *
 * <p>
 * Its {@link SmartLifecycle#stop(Runnable) stop} runs before the web server's graceful
 * shutdown (a higher phase), so the port still accepts and answers while it waits; it
 * waits until nothing is in flight or {@code spring.lifecycle.timeout-per-shutdown-phase}
 * has passed. Then {@code server.shutdown=graceful} waits for whatever is left and stops
 * the server, and only after that are the models closed.
 */
@Component
@Order(Ordered.HIGHEST_PRECEDENCE + 10)
class DrainGate extends OncePerRequestFilter implements SmartLifecycle {

    /** Stopped before the web server's graceful shutdown, which stops it accepting. */
    static final int PHASE = WebServerApplicationContext.GRACEFUL_SHUTDOWN_PHASE + 512;

    /** Seconds a client is told to wait: another instance should take over meanwhile. */
    static final int RETRY_AFTER_SECONDS = 5;

    static final String SHUTTING_DOWN = "shutting_down";

    private static final Duration POLL = Duration.ofMillis(20);

    private static final Logger logger = LoggerFactory.getLogger(DrainGate.class);

    private final ObjectMapper json;

    /** Longest wait for the requests in flight. */
    private final Duration timeout;

    /**
     * Requests that passed the gate and have not ended (async ones until they complete).
     */
    private final AtomicInteger inFlight = new AtomicInteger();

    private volatile boolean draining;

    private volatile boolean running;

    DrainGate(ObjectMapper json, @Value("${spring.lifecycle.timeout-per-shutdown-phase:30s}") Duration timeout) {
        this.json = json;
        this.timeout = timeout;
    }

    /** Requests in flight. */
    int inFlight() {
        return inFlight.get();
    }

    boolean draining() {
        return draining;
    }

    @Override
    protected void doFilterInternal(HttpServletRequest request, HttpServletResponse response, FilterChain chain)
            throws ServletException, IOException {
        if (draining && !AccessRules.isOpen(request)) {
            response.setHeader(HttpHeaders.CONNECTION, "close");
            ErrorResponses
                .write(response, json, OpenAiErrors.error(HttpStatus.SERVICE_UNAVAILABLE, OpenAiErrors.SERVER_ERROR,
                        "The server is shutting down: it finishes the requests in progress and accepts no new ones. "
                                + "Retry in a few seconds (another instance may answer).",
                        null, SHUTTING_DOWN, RETRY_AFTER_SECONDS));
            return;
        }
        inFlight.incrementAndGet();
        boolean async = false;
        try {
            chain.doFilter(request, response);
            if (request.isAsyncStarted()) {
                request.getAsyncContext().addListener(new Completion());
                async = true;
            }
        }
        finally {
            if (!async) {
                inFlight.decrementAndGet();
            }
        }
    }

    @Override
    public void start() {
        draining = false;
        running = true;
    }

    @Override
    public void stop() {
        throw new UnsupportedOperationException("Stopped with a callback only");
    }

    /**
     * Refuses new requests from now on and calls {@code callback} once those in flight
     * have ended, or after the shutdown phase's timeout.
     */
    @Override
    public void stop(Runnable callback) {
        draining = true;
        running = false;
        int waiting = inFlight.get();
        if (waiting == 0) {
            callback.run();
            return;
        }
        logger.info("Draining: {} request(s) in flight run to their end (at most {}); new ones are answered 503",
                waiting, timeout);
        Thread waiter = new Thread(() -> {
            long deadline = System.nanoTime() + timeout.toNanos();
            try {
                while (inFlight.get() > 0 && System.nanoTime() < deadline) {
                    Thread.sleep(POLL.toMillis());
                }
            }
            catch (InterruptedException ex) {
                Thread.currentThread().interrupt();
            }
            int left = inFlight.get();
            if (left > 0) {
                logger.warn("Drained for {}: {} request(s) still in flight are left to the web server's shutdown",
                        timeout, left);
            }
            else {
                logger.info("Drained: no request in flight");
            }
            callback.run();
        }, "specula-drain");
        waiter.setDaemon(true);
        waiter.start();
    }

    @Override
    public boolean isRunning() {
        return running;
    }

    @Override
    public int getPhase() {
        return PHASE;
    }

    /**
     * Not stopped when the context is only paused (as Spring's test framework pauses
     * contexts it caches): the web server goes on answering then, and so does the gate.
     */
    @Override
    public boolean isPauseable() {
        return false;
    }

    /**
     * Ends an async request's flight when it completes (after an error or timeout too).
     */
    private final class Completion implements AsyncListener {

        private final AtomicBoolean ended = new AtomicBoolean();

        @Override
        public void onComplete(AsyncEvent event) {
            if (ended.compareAndSet(false, true)) {
                inFlight.decrementAndGet();
            }
        }

        @Override
        public void onTimeout(AsyncEvent event) {
        }

        @Override
        public void onError(AsyncEvent event) {
        }

        @Override
        public void onStartAsync(AsyncEvent event) {
            // a new async cycle (another dispatch): listeners must register again
            event.getAsyncContext().addListener(this);
        }

    }

}
