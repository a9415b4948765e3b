package dev.specula.policy;

import java.util.Collection;

import dev.specula.request.InvalidRequestException;

/**
 * A policy name that no provider knows: a caller's mistake on field {@code policy}, code
 * {@code unknown_policy}.
 */
public class UnknownPolicyException extends InvalidRequestException {

    public static final String CODE = "unknown_policy";

    public UnknownPolicyException(String name, Collection<String> known) {
        super("policy", CODE, "Unknown speculation policy '" + name + "': use one of " + String.join(", ", known));
    }

}
