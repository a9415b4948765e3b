package dev.specula.cli;

/** Bad input on the command line: printed as one line on stderr, exit code 2. */
final class CliException extends RuntimeException {

    CliException(String message) {
        super(message);
    }

}
