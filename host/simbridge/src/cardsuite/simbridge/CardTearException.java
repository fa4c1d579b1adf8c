package cardsuite.simbridge;

/**
 * Thrown by {@link SimulatedCard#transmit} when an armed tear cut the power in the middle of the command.
 * The card is powered off afterwards; {@link SimulatedCard#reset()} powers it up again, which rolls back the
 * transaction that was open when the power failed.
 */
public class CardTearException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final int tornWrite;

    public CardTearException(int tornWrite) {
        super("power lost at persistent write #" + tornWrite + "; reset the card");
        this.tornWrite = tornWrite;
    }

    /** The 1-based index of the persistent write that did not (or only partly) happen. */
    public int tornWrite() {
        return tornWrite;
    }
}
