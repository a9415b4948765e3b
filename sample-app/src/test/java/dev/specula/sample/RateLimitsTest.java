package dev.specula.sample;

import java.time.Duration;

import org.junit.jupiter.api.Test;
import org.springframework.mock.web.MockHttpServletResponse;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Token reservations and their reconciliation, and OpenAI's duration format, without a
 * server (the HTTP side is in GatewaySecurityTest).
 */
class RateLimitsTest {

    private static final ApiKeys.Caller CALLER = ApiKeys.Caller.address("127.0.0.1");

    @Test
    void aReservationIsReplacedByTheRealUsage() {
        RateLimits limits = limits(0, 100);
        MockHttpServletResponse response = new MockHttpServletResponse();
        // 50 + 40 characters / 4
        RateLimits.Reservation first = limits.reserveTokens(CALLER, 50, RateLimits.estimateTokens(40), response);
        assertThat(response.getHeader("x-ratelimit-remaining-tokens")).isEqualTo("40");
        assertThat(response.getHeader("x-ratelimit-limit-tokens")).isEqualTo("100");
        assertThatThrownBy(() -> limits.reserveTokens(CALLER, 80, 0, new MockHttpServletResponse()))
            .isInstanceOfSatisfying(RateLimitExceededException.class,
                    (ex) -> assertThat(ex.getRetryAfterSeconds()).isPositive());

        first.settle(20);
        // settled once: a second settle changes nothing
        first.settle(0);
        MockHttpServletResponse after = new MockHttpServletResponse();
        limits.reserveTokens(CALLER, 80, 0, after);
        assertThat(Long.parseLong(after.getHeader("x-ratelimit-remaining-tokens"))).isBetween(0L, 1L);
    }

    @Test
    void usageBeyondTheReservationIsTakenBelowZero() {
        RateLimits limits = limits(0, 100);
        limits.reserveTokens(CALLER, 10, 0, new MockHttpServletResponse()).settle(150);
        assertThatThrownBy(() -> limits.reserveTokens(CALLER, 1, 0, new MockHttpServletResponse()))
            .isInstanceOfSatisfying(RateLimitExceededException.class,
                    (ex) -> assertThat(ex.getRetryAfterSeconds()).isGreaterThanOrEqualTo(30));
    }

    @Test
    void maxTokensOverTheMinuteNeverFitsAndSaysSo() {
        assertThatThrownBy(() -> limits(0, 100).reserveTokens(CALLER, 101, 0, new MockHttpServletResponse()))
            .isInstanceOfSatisfying(RateLimitExceededException.class,
                    (ex) -> assertThat(ex.getRetryAfterSeconds()).isZero())
            .hasMessageContaining("max_tokens 101")
            .hasMessageContaining("specula.gateway.rate-limit.tokens-per-minute");
    }

    @Test
    void requestsAreCountedPerCaller() {
        RateLimits limits = limits(2, 0);
        limits.admitRequest(CALLER, new MockHttpServletResponse());
        limits.admitRequest(CALLER, new MockHttpServletResponse());
        assertThatThrownBy(() -> limits.admitRequest(CALLER, new MockHttpServletResponse()))
            .isInstanceOf(RateLimitExceededException.class)
            .hasMessageContaining("specula.gateway.rate-limit.requests-per-minute");
        limits.admitRequest(ApiKeys.Caller.address("127.0.0.2"), new MockHttpServletResponse());
        assertThat(limits.reserveTokens(CALLER, 1_000_000, 0, new MockHttpServletResponse()))
            .isSameAs(RateLimits.Reservation.NONE);
    }

    @Test
    void durationsAreWrittenAsOpenAiWritesThem() {
        assertThat(RateLimits.duration(Duration.ofMillis(250).toNanos())).isEqualTo("250ms");
        assertThat(RateLimits.duration(Duration.ofMillis(1500).toNanos())).isEqualTo("1.5s");
        assertThat(RateLimits.duration(Duration.ofSeconds(20).toNanos())).isEqualTo("20s");
        assertThat(RateLimits.duration(Duration.ofMinutes(6).toNanos())).isEqualTo("6m0s");
        assertThat(RateLimits.duration(Duration.ofSeconds(90).toNanos())).isEqualTo("1m30s");
    }

    private static RateLimits limits(long requestsPerMinute, long tokensPerMinute) {
        GatewayProperties properties = new GatewayProperties();
        properties.getRateLimit().setRequestsPerMinute(requestsPerMinute);
        properties.getRateLimit().setTokensPerMinute(tokensPerMinute);
        return new RateLimits(properties);
    }

}
