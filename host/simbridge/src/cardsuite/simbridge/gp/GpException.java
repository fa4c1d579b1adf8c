package cardsuite.simbridge.gp;

/** A command the card manager refuses: {@link #sw()} is the status word it answers. */
public final class GpException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final int sw;

    public GpException(int sw, String why) {
        super(String.format("%04X: %s", sw, why));
        this.sw = sw;
    }

    public int sw() {
        return sw;
    }
}
