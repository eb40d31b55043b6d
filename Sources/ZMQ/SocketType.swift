internal import CZMQ

/// A ZeroMQ socket type: the messaging pattern a socket takes part in.
public enum SocketType: Sendable, CustomStringConvertible {
    /// `ZMQ_PAIR`: exclusive pair, one peer.
    case pair
    /// `ZMQ_PUB`: publisher; drops messages for subscribers at their high-water mark.
    case pub
    /// `ZMQ_SUB`: subscriber; receives only subscribed prefixes.
    case sub
    /// `ZMQ_REQ`: strict request-reply client.
    case req
    /// `ZMQ_REP`: strict request-reply server.
    case rep
    /// `ZMQ_DEALER`: asynchronous request-reply, load-balancing sends.
    case dealer
    /// `ZMQ_ROUTER`: asynchronous request-reply, routes by peer identity.
    case router
    /// `ZMQ_PULL`: pipeline receiver.
    case pull
    /// `ZMQ_PUSH`: pipeline sender.
    case push
    /// `ZMQ_XPUB`: publisher that receives subscriptions as messages.
    case xpub
    /// `ZMQ_XSUB`: subscriber that sends subscriptions as messages.
    case xsub

    /// The libzmq constant.
    internal var rawValue: CInt {
        switch self {
        case .pair: ZMQ_PAIR
        case .pub: ZMQ_PUB
        case .sub: ZMQ_SUB
        case .req: ZMQ_REQ
        case .rep: ZMQ_REP
        case .dealer: ZMQ_DEALER
        case .router: ZMQ_ROUTER
        case .pull: ZMQ_PULL
        case .push: ZMQ_PUSH
        case .xpub: ZMQ_XPUB
        case .xsub: ZMQ_XSUB
        }
    }

    /// The libzmq name, such as `ROUTER`.
    public var description: String {
        switch self {
        case .pair: "PAIR"
        case .pub: "PUB"
        case .sub: "SUB"
        case .req: "REQ"
        case .rep: "REP"
        case .dealer: "DEALER"
        case .router: "ROUTER"
        case .pull: "PULL"
        case .push: "PUSH"
        case .xpub: "XPUB"
        case .xsub: "XSUB"
        }
    }
}
