package cardsuite.simbridge;

/**
 * Unwinds applet code once the simulated power is gone. An Error, not an Exception, so applet code that catches
 * Exception or RuntimeException does not swallow it; even if an applet catches Throwable, every later persistent
 * write throws it again, so nothing more reaches the card.
 */
final class PowerLoss extends Error {
    private static final long serialVersionUID = 1L;

    static final PowerLoss INSTANCE = new PowerLoss();

    private PowerLoss() {
        super("simulated power loss", null, false, false);
    }
}
