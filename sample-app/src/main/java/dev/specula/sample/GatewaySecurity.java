package dev.specula.sample;

import jakarta.servlet.DispatcherType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.security.authentication.ProviderManager;
import org.springframework.security.config.annotation.web.builders.HttpSecurity;
import org.springframework.security.config.annotation.web.configurers.AbstractHttpConfigurer;
import org.springframework.security.config.http.SessionCreationPolicy;
import org.springframework.security.config.observation.SecurityObservationSettings;
import org.springframework.security.web.SecurityFilterChain;
import org.springframework.security.web.access.intercept.AuthorizationFilter;
import org.springframework.security.web.authentication.AnonymousAuthenticationFilter;
import org.springframework.security.web.authentication.AuthenticationEntryPointFailureHandler;
import org.springframework.security.web.authentication.AuthenticationFilter;
import org.springframework.security.web.firewall.RequestRejectedHandler;
import org.springframework.security.web.util.matcher.NegatedRequestMatcher;
import tools.jackson.databind.ObjectMapper;

/**
 * API keys on Spring Security: a stateless filter chain (no session, no CSRF, no form
 * login, HTTP Basic or logout, no generated user) that reads
 * {@code Authorization: Bearer <key>} ({@link BearerKeyConverter}), checks it in constant
 * time ({@link ApiKeyAuthenticationProvider}) and applies {@link AccessRules}: health and
 * the playground's pages open, Actuator writes for admin keys, everything else for any
 * key. Refusals are OpenAI's errors: 401 {@code invalid_api_key}
 * ({@link OpenAiAuthenticationEntryPoint}), 403 {@code insufficient_permissions}
 * ({@link OpenAiAccessDeniedHandler}), 400 {@code invalid_url} for what the firewall
 * refuses ({@link RejectedRequests}).
 *
 * <p>
 * The chain runs after {@link RequestIds} and {@link DrainGate} (servlet filters of
 * higher precedence than {@code spring.security.filter.order}), and ends with the
 * {@link RateLimitFilter}, after authorization: a refused request is never counted, and
 * an accepted one is counted under its key ({@link Callers}). Async dispatches (streams,
 * non-streamed calls answered from another thread) and error dispatches belong to a
 * request that was authorized already and pass. Without any key configured everything is
 * open, as before, callers known by address, and the start logs one warning.
 */
@Configuration(proxyBeanMethods = false)
class GatewaySecurity {

    private static final Logger logger = LoggerFactory.getLogger(GatewaySecurity.class);

    @Bean
    ApiKeys apiKeys(GatewayProperties properties) {
        ApiKeys keys = ApiKeys.of(properties);
        String prefix = GatewayProperties.CONFIG_PREFIX;
        if (!keys.enabled()) {
            logger.warn("No API keys are configured ({}.api-keys, api-keys-file, admin-api-keys): /v1/** and every "
                    + "Actuator endpoint, cache clearing included, are open to anyone who can reach this port; "
                    + "set {}.api-keys to require keys", prefix, prefix);
        }
        else if (keys.shortKeys() > 0) {
            logger.warn("{} API key(s) are shorter than {} characters and easy to guess: use long random keys "
                    + "(e.g. openssl rand -hex 32)", keys.shortKeys(), ApiKeys.SHORT);
        }
        return keys;
    }

    /**
     * The only way to authenticate; as a bean it also keeps Spring Boot from creating a
     * user with a generated password.
     */
    @Bean
    ApiKeyAuthenticationProvider apiKeyAuthenticationProvider(ApiKeys keys) {
        return new ApiKeyAuthenticationProvider(keys);
    }

    /** OpenAI's 400 for what Spring Security's firewall refuses. */
    @Bean
    RequestRejectedHandler rejectedRequests(ObjectMapper json) {
        return new RejectedRequests(json);
    }

    /**
     * No observation of each security filter: the HTTP server's observation already times
     * every request, and one per filter would cost each request more than the checks
     * themselves.
     */
    @Bean
    SecurityObservationSettings securityObservationSettings() {
        return SecurityObservationSettings.noObservations();
    }

    @Bean
    SecurityFilterChain gatewayFilterChain(HttpSecurity http, ApiKeys keys, ApiKeyAuthenticationProvider provider,
            RateLimits rateLimits, ObjectMapper json) throws Exception {
        OpenAiAuthenticationEntryPoint entryPoint = new OpenAiAuthenticationEntryPoint(json);
        http.csrf(AbstractHttpConfigurer::disable)
            .formLogin(AbstractHttpConfigurer::disable)
            .httpBasic(AbstractHttpConfigurer::disable)
            .logout(AbstractHttpConfigurer::disable)
            .requestCache(AbstractHttpConfigurer::disable)
            .sessionManagement((sessions) -> sessions.sessionCreationPolicy(SessionCreationPolicy.STATELESS))
            .exceptionHandling((exceptions) -> exceptions.authenticationEntryPoint(entryPoint)
                .accessDeniedHandler(new OpenAiAccessDeniedHandler(json)))
            .addFilterAfter(new RateLimitFilter(rateLimits, json), AuthorizationFilter.class);
        if (!keys.enabled()) {
            http.authorizeHttpRequests((requests) -> requests.anyRequest().permitAll());
            return http.build();
        }
        AuthenticationFilter bearerKeys = new AuthenticationFilter(new ProviderManager(provider),
                new BearerKeyConverter());
        // a key sent to an open path is not checked, as a wrong one there is no error
        bearerKeys.setRequestMatcher(new NegatedRequestMatcher(AccessRules.OPEN));
        bearerKeys.setSuccessHandler((request, response, authentication) -> {
        });
        bearerKeys.setFailureHandler(new AuthenticationEntryPointFailureHandler(entryPoint));
        http.addFilterBefore(bearerKeys, AnonymousAuthenticationFilter.class)
            .authorizeHttpRequests(
                    (requests) -> requests.dispatcherTypeMatchers(DispatcherType.ASYNC, DispatcherType.ERROR)
                        .permitAll()
                        .requestMatchers(AccessRules.OPEN)
                        .permitAll()
                        .requestMatchers(AccessRules.ADMIN_WRITES)
                        .hasRole(CallerAuthentication.ADMIN)
                        .anyRequest()
                        .authenticated());
        return http.build();
    }

}
