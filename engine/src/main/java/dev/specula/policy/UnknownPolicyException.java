package dev.specula.policy;

import java.util.Collection;

/** A policy name that no provider knows. */
public class UnknownPolicyException extends IllegalArgumentException {

    public UnknownPolicyException(String name, Collection<String> known) {
        super("Unknown speculation policy '" + name + "': use one of " + String.join(", ", known));
    }
}
