package dev.specula.sample;

import java.time.Duration;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;

import jakarta.servlet.http.HttpServletRequest;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.stereotype.Component;
import org.springframework.web.context.request.NativeWebRequest;
import org.springframework.web.context.request.async.DeferredResult;
import org.springframework.web.context.request.async.DeferredResultProcessingInterceptor;
import org.springframework.web.context.request.async.WebAsyncUtils;

import dev.specula.engine.CancellationToken;

/**
 * Runs non-streamed generations off the servlet threads, so that a client that closes its
 * connection cancels its generation: the request goes async ({@link DeferredResult}), the
 * call runs on this executor with a {@link CancellationToken}, and a {@link ClientWatch}
 * cancels that token when the client goes. The generation then stops (in the batch
 * between steps, at once while queued) and frees its slot and KV memory. The time limit
 * cancels it too, and answers the request with the timeout.
 */
@Component
class NonStreamedCalls implements DisposableBean {

    private static final AtomicInteger THREADS = new AtomicInteger();

    /**
     * One thread per generation in progress, as servlet threads did before: the
     * generation slots (the bulkhead) bound how many run.
     */
    private final ExecutorService executor = Executors.newCachedThreadPool((runnable) -> {
        Thread thread = new Thread(runnable, "specula-call-" + THREADS.incrementAndGet());
        thread.setDaemon(true);
        return thread;
    });

    private final ClientWatch clientWatch;

    NonStreamedCalls(ClientWatch clientWatch) {
        this.clientWatch = clientWatch;
    }

    /**
     * {@code call} on the executor; its value (or failure) answers {@code http}.
     * @param timeout longest the call may take: then it is cancelled and the request
     * answered with an {@code AsyncRequestTimeoutException}
     */
    DeferredResult<Object> run(HttpServletRequest http, Duration timeout, Function<CancellationToken, Object> call) {
        DeferredResult<Object> result = new DeferredResult<>(timeout.toMillis());
        CancellationToken cancellation = new CancellationToken();
        ClientWatch.Watch watch = clientWatch.watch(cancellation::cancel);
        WebAsyncUtils.getAsyncManager(http)
            .registerDeferredResultInterceptor(NonStreamedCalls.class.getName(), new Interceptor(watch, cancellation));
        executor.execute(() -> {
            Object value = null;
            Throwable failure = null;
            try {
                value = call.apply(cancellation);
            }
            catch (Throwable ex) {
                failure = ex;
            }
            // the watch reads from the connection: it must be done before the answer is
            // written
            watch.stop();
            if (failure != null) {
                result.setErrorResult(failure);
            }
            else {
                result.setResult(value);
            }
        });
        return result;
    }

    @Override
    public void destroy() {
        executor.shutdownNow();
    }

    /**
     * Starts the watch once async processing started; stops it and cancels on a timeout
     * or error.
     */
    private record Interceptor(ClientWatch.Watch watch,
            CancellationToken cancellation) implements DeferredResultProcessingInterceptor {

        @Override
        public <T> void preProcess(NativeWebRequest request, DeferredResult<T> deferredResult) {
            HttpServletRequest http = request.getNativeRequest(HttpServletRequest.class);
            if (http != null) {
                watch.start(http);
            }
        }

        @Override
        public <T> boolean handleTimeout(NativeWebRequest request, DeferredResult<T> deferredResult) {
            watch.stop();
            cancellation.cancel();
            return true;
        }

        @Override
        public <T> boolean handleError(NativeWebRequest request, DeferredResult<T> deferredResult, Throwable t) {
            watch.stop();
            cancellation.cancel();
            return true;
        }

        @Override
        public <T> void afterCompletion(NativeWebRequest request, DeferredResult<T> deferredResult) {
            watch.stop();
        }

    }

}
