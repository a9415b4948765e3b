package dev.specula.sample;

import org.junit.jupiter.api.Test;
import org.springframework.mock.web.MockHttpServletResponse;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * What an overflowed answer costs its caller's tokens per minute, seen through the
 * caller's next reservation: the remote's usage when it reports one, else the prompt and
 * the text it sent, estimated; nothing when it did not answer.
 */
class OverflowChargeTest {

    private static final ApiKeys.Caller CALLER = ApiKeys.Caller.address("127.0.0.1");

    @Test
    void theUsageTheRemoteReportsIsCharged() {
        RateLimits limits = limits(100);
        OverflowCharge charge = new OverflowCharge(limits.reserveTokens(CALLER, 50, 10, response()), 10);
        charge.sent("x".repeat(400));
        charge.settle(70);

        assertThatThrownBy(() -> limits.reserveTokens(CALLER, 40, 0, response()))
            .isInstanceOf(RateLimitExceededException.class);
    }

    @Test
    void withoutUsageThePromptAndTheSentTextAreChargedEstimated() {
        RateLimits limits = limits(100);
        OverflowCharge charge = new OverflowCharge(limits.reserveTokens(CALLER, 50, 10, response()), 10);
        // 40 characters in two chunks: 10 tokens
        charge.sent("x".repeat(15));
        charge.sent("y".repeat(25));
        assertThat(charge.estimatedTokens()).isEqualTo(20);
        charge.settle(0);

        MockHttpServletResponse next = response();
        limits.reserveTokens(CALLER, 80, 0, next);
        assertThat(Long.parseLong(next.getHeader("x-ratelimit-remaining-tokens"))).isBetween(0L, 1L);
    }

    @Test
    void aRemoteThatDidNotAnswerCostsNothing() {
        RateLimits limits = limits(100);
        new OverflowCharge(limits.reserveTokens(CALLER, 90, 10, response()), 10).refund();

        MockHttpServletResponse next = response();
        limits.reserveTokens(CALLER, 100, 0, next);
        assertThat(Long.parseLong(next.getHeader("x-ratelimit-remaining-tokens"))).isBetween(0L, 1L);
    }

    private static MockHttpServletResponse response() {
        return new MockHttpServletResponse();
    }

    private static RateLimits limits(long tokensPerMinute) {
        GatewayProperties properties = new GatewayProperties();
        properties.getRateLimit().setTokensPerMinute(tokensPerMinute);
        return new RateLimits(properties);
    }

}
