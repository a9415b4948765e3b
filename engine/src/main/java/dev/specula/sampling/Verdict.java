package dev.specula.sampling;

/**
 * The outcome of verifying one round of drafts.
 *
 * @param accepted how many drafted tokens the target kept, a prefix of the drafts
 * (0..drafted)
 * @param nextToken the token the target adds after them: the recovered token at the first
 * rejection, or the bonus token when every draft was accepted
 */
public record Verdict(int accepted, int nextToken) {
}
