package dev.specula.sample;

import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

import jakarta.servlet.ReadListener;
import jakarta.servlet.ServletInputStream;
import jakarta.servlet.http.HttpServletRequest;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.stereotype.Component;

/**
 * Notices that the client of an async request has gone although nothing is being written
 * to it (a non-streamed completion is silent until its answer): the servlet API has no
 * event for that, and a write would commit the response. Every {@link #PERIOD} a watch
 * asks the request's input, in non-blocking mode after the body was read, whether it can
 * read more: with Tomcat a closed connection reads as available data (the end of the
 * stream) while an open, idle one reads nothing. A client that pipelines its next request
 * on the connection would look gone too; HTTP clients do not pipeline.
 */
@Component
class ClientWatch implements DisposableBean {

    /** How often a watch looks. */
    static final Duration PERIOD = Duration.ofMillis(250);

    private static final Logger logger = LoggerFactory.getLogger(ClientWatch.class);

    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor((runnable) -> {
        Thread thread = new Thread(runnable, "specula-client-watch");
        thread.setDaemon(true);
        return thread;
    });

    /** A watch that will run {@code onGone} once if the client goes; not started yet. */
    Watch watch(Runnable onGone) {
        return new Watch(onGone);
    }

    @Override
    public void destroy() {
        timer.shutdownNow();
    }

    /**
     * One request's watch: {@link #start} after async processing started and the body was
     * read; {@link #stop} before the answer is written (the check reads from the
     * connection, which must then be left to the container).
     */
    final class Watch {

        private final Runnable onGone;

        /** The request's input, in non-blocking mode once started; guarded by this. */
        private ServletInputStream input;

        private ScheduledFuture<?> task;

        private boolean stopped;

        private Watch(Runnable onGone) {
            this.onGone = onGone;
        }

        /** Starts looking; nothing when already stopped. */
        synchronized void start(HttpServletRequest request) {
            if (stopped) {
                return;
            }
            try {
                input = request.getInputStream();
                input.setReadListener(new Ignored());
            }
            catch (IOException | IllegalStateException ex) {
                logger.debug("Cannot watch the client of {}: {}", RequestIds.of(request), ex.toString());
                return;
            }
            task = timer.scheduleWithFixedDelay(this::check, PERIOD.toMillis(), PERIOD.toMillis(),
                    TimeUnit.MILLISECONDS);
        }

        /** Stops looking; once this returns no check runs any more. */
        synchronized void stop() {
            stopped = true;
            if (task != null) {
                task.cancel(false);
            }
        }

        private synchronized void check() {
            if (stopped) {
                return;
            }
            boolean gone;
            try {
                gone = input.available() > 0;
            }
            catch (IOException | IllegalStateException ex) {
                gone = true;
            }
            if (gone) {
                stop();
                onGone.run();
            }
        }

    }

    /** The body was read before the watch started: nothing is left to read. */
    private static final class Ignored implements ReadListener {

        @Override
        public void onDataAvailable() {
        }

        @Override
        public void onAllDataRead() {
        }

        @Override
        public void onError(Throwable failure) {
        }

    }

}
